"""Plain-text renderings of a stored run: the summary `opensre run` prints and the
process tree of `opensre show`. Pure functions of records -> str."""

from __future__ import annotations

from collections import defaultdict

from ..model import Process, Run, failed, tool_label
from ..term import term


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def fmt_s(ns: int | None) -> str:
    if ns is None:
        return "-"
    s = ns / 1e9
    if s < 1:
        return f"{s * 1000:.1f}ms"
    if s < 120:
        return f"{s:.2f}s"
    return f"{int(s // 60)}m{s % 60:04.1f}s"


def exit_text(p_or_r) -> str:
    if p_or_r.exit_signal:
        return f"sig {p_or_r.exit_signal}"
    if p_or_r.exit_code is None:
        return "?"
    return str(p_or_r.exit_code)


def tool_table(procs: list[Process]) -> list[tuple[str, int, int, int]]:
    """(tool, count, cpu_ns, peak_rss) sorted by CPU."""
    agg: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in procs:
        a = agg[term(p.tool) or "?"]
        a[0] += 1
        a[1] += p.cpu_ns
        a[2] = max(a[2], p.peak_rss_bytes or 0)
    return sorted(((t, *v) for t, v in agg.items()), key=lambda r: -r[2])


def run_summary(run: Run, procs: list[Process], store_path: str = "", top: int = 5) -> str:
    wall = (run.end_time_ns - run.start_time_ns) if run.end_time_ns else None
    cpu_u = sum(p.cpu_user_ns or 0 for p in procs)
    cpu_s = sum(p.cpu_system_ns or 0 for p in procs)
    peak = max(procs, key=lambda p: p.peak_rss_bytes or 0, default=None)
    incomplete = sum(not p.complete for p in procs)
    partial = sum(p.observed_since_ns is not None for p in procs)
    rb = sum(p.read_bytes or 0 for p in procs)
    wb = sum(p.write_bytes or 0 for p in procs)
    rc = sum(p.rchar or 0 for p in procs)
    wc = sum(p.wchar or 0 for p in procs)
    title = f"run {term(run.run_id)}" + (f" ({term(run.name)})" if run.name else "")
    lines = [f"── opensre {title} ── {run.status}, exit {exit_text(run)}, wall {fmt_s(wall)}"]
    lines.append(f"  processes  {len(procs)}" + (f"  ({incomplete} still running at the end)" if incomplete else "")
                 + (f"  ({partial} observed only partially)" if partial else ""))
    cores = f", {((cpu_u + cpu_s) / wall):.2f} cores on average" if wall else ""
    lines.append(f"  CPU        {fmt_s(cpu_u + cpu_s)} (user {fmt_s(cpu_u)}, system {fmt_s(cpu_s)}){cores}")
    if peak is not None and peak.peak_rss_bytes:
        lines.append(f"  peak RSS   {fmt_bytes(peak.peak_rss_bytes)} ({term(peak.tool)}, pid {peak.pid})")
    lines.append(f"  storage    read {fmt_bytes(rb)}, written {fmt_bytes(wb)}")
    lines.append(f"  syscalls   read {fmt_bytes(rc)}, written {fmt_bytes(wc)}")
    rq = sum(p.runq_wait_ns or 0 for p in procs)
    bl = sum(p.blocked_io_ns or 0 for p in procs)
    if rq or bl:
        lines.append(f"  waiting    run queue {fmt_s(rq)}, blocked on I/O {fmt_s(bl)}")
    tx = sum(p.net_tx_bytes or 0 for p in procs)
    rx = sum(p.net_rx_bytes or 0 for p in procs)
    if tx or rx:
        lines.append(f"  network    sent {fmt_bytes(tx)}, received {fmt_bytes(rx)}")
    ooms = [p for p in procs if p.oom_killed]
    if ooms:
        lines.append(f"  OOM kills  {len(ooms)}: " + ", ".join(f"{term(p.tool)} (pid {p.pid})" for p in ooms[:5]))
    drop = f"{run.drops}" + (f" {run.drop_detail}" if run.drops else "")
    lines.append(f"  drops      {drop}")
    for fam, what in run.degraded_probes().items():
        # this kernel could not give everything: say what is missing, not zeros
        lines.append(f"  probes     {fam}: {what}")
    tt = tool_table(procs)[:top]
    if tt:
        lines.append("  top tools (by CPU):")
        w = max(len(t[0]) for t in tt)
        for tool, n, cpu, rss in tt:
            lines.append(f"    {tool:<{w}}  ×{n:<4} CPU {fmt_s(cpu):>9}  peak {fmt_bytes(rss):>10}")
    if store_path:
        lines.append(f"  details    opensre show {run.run_id}   (store {store_path})")
    return "\n".join(lines)


def process_tree(procs: list[Process], width: int = 60) -> str:
    """Indented tree with per-process figures; orphans of unknown parents at the top level."""
    key = {(p.pid, p.start_time_ns): p for p in procs}
    children: dict[tuple, list[Process]] = defaultdict(list)
    by_pid: dict[int, list[Process]] = defaultdict(list)
    for p in procs:
        by_pid[p.pid].append(p)
    roots = []
    for p in procs:
        parent = None
        if p.parent_start_time_ns is not None:
            parent = key.get((p.ppid, p.parent_start_time_ns))
        elif p.ppid in by_pid:
            # the latest process with that pid that started before this one
            cands = [q for q in by_pid[p.ppid] if q.start_time_ns <= p.start_time_ns and q is not p]
            parent = max(cands, key=lambda q: q.start_time_ns, default=None)
        if parent is None:
            roots.append(p)
        else:
            children[(parent.pid, parent.start_time_ns)].append(p)
    t0 = min((p.start_time_ns for p in procs), default=0)
    hdr = f"{'PID':>7} {'START':>8} {'WALL':>9} {'CPU':>9} {'PEAK RSS':>10} {'READ':>10} {'WRITE':>10} {'EXIT':>6}  COMMAND"
    out = [hdr]

    def walk(p: Process, depth: int):
        wall = (p.end_time_ns - p.start_time_ns) if p.end_time_ns else None
        cmd = term(" ".join(p.argv) if p.argv else p.comm)
        cmd = ("  " * depth + cmd)[:width]
        flag = "" if p.complete else " (running)"
        if p.observed_since_ns is not None:
            flag += " (partial)"
        out.append(f"{p.pid:>7} {'+' + fmt_s(p.start_time_ns - t0):>8} {fmt_s(wall):>9} {fmt_s(p.cpu_ns):>9} "
                   f"{fmt_bytes(p.peak_rss_bytes):>10} {fmt_bytes(p.read_bytes):>10} {fmt_bytes(p.write_bytes):>10} "
                   f"{exit_text(p):>6}  {cmd}{flag}")
        for c in sorted(children[(p.pid, p.start_time_ns)], key=lambda q: q.start_time_ns):
            walk(c, depth + 1)

    for r in sorted(roots, key=lambda q: q.start_time_ns):
        walk(r, 0)
    return "\n".join(out)


def task_view(tasks, tools, width: int = 100, limit: int | None = None) -> str:
    """run -> task -> tool, with per-level totals. `limit`: at most that many task
    rows, failed, OOM-killed and unfinished ones first, then the most CPU, shown
    in start order; the cut is said on the last line."""
    by_task = defaultdict(list)
    for u in tools:
        by_task[u.task_id].append(u)
    cut = 0
    if limit is not None and len(tasks) > limit:
        keep = sorted(tasks, key=lambda t: (not (failed(t.exit_code, t.exit_signal) or t.oom_killed
                                              or t.end_time_ns is None), -t.cpu_ns))
        kept = {id(t) for t in keep[:limit]}
        cut = len(tasks) - limit
        tasks = [t for t in tasks if id(t) in kept]
    # PEAK MEM: the largest sum of its live processes' RSS; PEAK RSS: its largest single process
    hdr = (f"{'TASK':<6} {'NAME':<34} {'ENGINE':<10} {'PROCS':>5} {'WALL':>9} {'CPU':>9} {'PEAK MEM':>10} "
           f"{'PEAK RSS':>10} {'READ':>9} {'WRITE':>9} {'EXIT':>6}")
    out = [hdr]
    for t in tasks:
        wall = (t.end_time_ns - t.start_time_ns) if t.end_time_ns else None
        flag = " OOM" if t.oom_killed else ""
        out.append(f"{term(t.task_id):<6} {term(t.task_name)[:34]:<34} {term(t.engine)[:10]:<10} {t.process_count:>5} {fmt_s(wall):>9} "
                   f"{fmt_s(t.cpu_ns):>9} {fmt_bytes(max(t.memory_peak_bytes or 0, t.peak_rss_bytes or 0)):>10} "
                   f"{fmt_bytes(t.peak_rss_bytes):>10} {fmt_bytes(t.read_bytes):>9} "
                   f"{fmt_bytes(t.write_bytes):>9} {exit_text(t):>6}{flag}")
        for u in sorted(by_task.get(t.task_id, []), key=lambda u: u.start_time_ns)[:8]:
            name = term(tool_label(u.tool, u.subcommand))
            wall = (u.end_time_ns - u.start_time_ns) if u.end_time_ns else None
            out.append(f"{'':<6}   └ {name[:30]:<30} {'':<10} {u.pid:>5} {fmt_s(wall):>9} {fmt_s(u.cpu_ns):>9} "
                       f"{'':>10} {fmt_bytes(u.peak_rss_bytes):>10} {fmt_bytes(u.read_bytes):>9} {fmt_bytes(u.write_bytes):>9} "
                       f"{exit_text(u):>6}")
        extra = len(by_task.get(t.task_id, [])) - 8
        if extra > 0:
            out.append(f"{'':<6}   └ … {extra} more tool invocations")
    if cut:
        out.append(f"… {cut:,} more tasks not shown (failed, OOM-killed and unfinished ones first, then the most "
                   f"CPU; `--rows N` for more, `opensre export --what tasks` for all)")
    return "\n".join(out)
