"""`opensre show RUN --timeline`: a terminal Gantt of processes with their CPU use
over time (from the samples), what held them back, and the run's events."""

from __future__ import annotations

from collections import defaultdict

from ..model import Event, Process, Run, Sample
from ..term import term
from .summary import fmt_bytes, fmt_s

SHADES = " ░▒▓█"  # share of one core in a column: <12%, <37%, <62%, <87%, more


def _shade(util: float) -> str:
    if util <= 0.0:
        return "·"
    return SHADES[min(4, max(1, int(util * 4 + 0.5)))]


def timeline(run: Run, procs: list[Process], samples: list[Sample], events: list[Event],
             width: int = 80, max_rows: int = 40) -> str:
    if not procs:
        return "no processes"
    t0 = min(p.start_time_ns for p in procs)
    t1 = max([p.end_time_ns or run.end_time_ns or p.start_time_ns for p in procs] + [run.end_time_ns or 0])
    cols = max(20, width - 44)
    span = max(t1 - t0, 1)
    col_ns = span / cols
    series: dict[tuple, list[Sample]] = defaultdict(list)
    for s in samples:
        series[(s.pid, s.start_time_ns)].append(s)

    rows = sorted(procs, key=lambda p: -(p.oncpu_ns or p.cpu_ns))[:max_rows]
    rows.sort(key=lambda p: p.start_time_ns)
    out = [f"timeline {fmt_s(0)} → {fmt_s(span)}, one column = {fmt_s(int(col_ns))}; "
           f"shade = share of a core: {SHADES[1]} low … {SHADES[4]} full, · alive but idle"]
    out.append(f"{'PID':>7} {'COMMAND':<16} |{'':<{cols}}| {'CPU':>8} {'RUNQ':>7} {'IO-WAIT':>7} {'PEAK':>9}")
    for p in rows:
        bar = [" "] * cols
        a = int((p.start_time_ns - t0) / col_ns)
        b = int(((p.end_time_ns or t1) - t0) / col_ns)
        for c in range(max(0, a), min(cols, b + 1)):
            bar[c] = "·"
        # spread each sample's CPU over the interval it covers
        prev_t = p.start_time_ns
        for s in series.get((p.pid, p.start_time_ns), []):
            lo, hi = int((prev_t - t0) / col_ns), int((s.t_ns - t0) / col_ns)
            n = max(1, hi - lo + 1)
            util = s.cpu_ns / max(s.t_ns - prev_t, 1)
            for c in range(max(0, lo), min(cols, hi + 1)):
                bar[c] = _shade(util if n > 1 else s.cpu_ns / col_ns)
            prev_t = s.t_ns
        if p.oom_killed or p.exit_signal:
            bar[min(cols - 1, max(0, b))] = "✗" if p.oom_killed else "x"
        name = (term(p.tool) or "?")[:16]
        out.append(f"{p.pid:>7} {name:<16} |{''.join(bar)}| {fmt_s(p.oncpu_ns or p.cpu_ns):>8} "
                   f"{fmt_s(p.runq_wait_ns):>7} {fmt_s(p.blocked_io_ns):>7} {fmt_bytes(p.peak_rss_bytes):>9}")
    if len(procs) > len(rows):
        out.append(f"        … {len(procs) - len(rows)} more processes (the {max_rows} with most CPU are shown)")
    marks = [e for e in events if e.kind == "oom_kill"]
    conns = [e for e in events if e.kind == "tcp_connection"]
    if marks or conns:
        out.append("")
        out.append("events:")
    for e in marks:
        lim = e.data.get("memcg_limit_bytes")
        out.append(f"  +{fmt_s(e.t_ns - t0):>8}  OOM kill of pid {e.pid} ({term(e.data.get('comm'))}), "
                   f"RSS {fmt_bytes(e.data.get('rss_bytes'))}, memcg limit {fmt_bytes(lim) if lim else 'none'}")
    for e in conns[:20]:
        d = e.data
        out.append(f"  +{fmt_s(e.t_ns - t0):>8}  tcp {d['direction']} pid {e.pid} {d['local_addr']}:{d['local_port']} → "
                   f"{d['remote_addr']}:{d['remote_port']} sent {fmt_bytes(d.get('bytes_sent'))} "
                   f"recv {fmt_bytes(d.get('bytes_received'))} for {fmt_s(d.get('duration_ns'))}")
    if len(conns) > 20:
        out.append(f"  … {len(conns) - 20} more connections (opensre export --what events)")
    return "\n".join(out)
