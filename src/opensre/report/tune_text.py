"""`opensre tune` in the terminal: rich tables (colour only on a TTY)."""

from __future__ import annotations

import io
import math

from rich.console import Console
from rich.table import Table

from ..term import markup as m
from .summary import fmt_bytes

_STYLE = {"cpu_bound": "cyan", "io_bound": "magenta", "cpu_starved": "yellow", "memory_bound": "red",
          "idle": "dim", "failed": "bold red", "oom_killed": "bold red", "overallocated_cpu": "green",
          "overallocated_memory": "green"}


TRIVIAL_WALL_S = 0.5
TRIVIAL_PEAK = 64 << 20


def _trivial(r) -> bool:
    """A type whose tasks were all short and small: a helper, not worth a row."""
    e = r.evidence
    return (e.get("wall_s_p95", 0) < TRIVIAL_WALL_S and e.get("memory_peak_bytes_max", e.get("peak_rss_bytes_max", 0)) < TRIVIAL_PEAK
            and not r.warnings and not e.get("oom_kills") and not r.current_cpus and not r.current_memory_bytes)


def _ev(ev: dict) -> str:
    skip = {"wall_s", "cpu_s"}
    parts = []
    for k, v in ev.items():
        if k in skip or v is None:
            continue
        if k.endswith("_bytes") and isinstance(v, (int, float)):
            v = fmt_bytes(int(v))
        parts.append(f"{m(k)}={m(v)}")
    return ", ".join(parts)


def render(result, color: bool | None = None, width: int = 120) -> str:
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=bool(color), no_color=not color, width=width, emoji=False,
                  color_system="standard" if color else None)
    _head(con, result)
    _findings(con, result)
    _recommendations(con, result)
    if result.comparison is not None:
        _comparison(con, result)
    if result.cost:
        _cost(con, result.cost)
    return buf.getvalue()


def _head(con: Console, result) -> None:
    head = f"tune: {len(result.run_ids)} run(s) " + ", ".join(m(r[:12]) for r in result.run_ids)
    if result.host:
        head += f" on {m(result.host['hostname'])} ({result.host['cpus']} CPUs, {fmt_bytes(result.host['mem_bytes'])})"
    base = (result.options or {}).get("baseline") or []
    if base:
        head += " against " + ", ".join(m(r[:12]) for r in base[:5]) + (", ..." if len(base) > 5 else "")
    con.print(head)
    for r in getattr(result, "runs", None) or ():
        if r.get("failed"):
            how = f"signal {r['exit_signal']}" if r.get("exit_signal") else f"exit status {r['exit_code']}"
            con.print(f"run {m(r['run_id'][:12])} FAILED: {how}")


def _findings(con: Console, result) -> None:
    t = Table(title="Findings per task", title_justify="left", show_lines=False)
    for c in ("task", "classification", "wall", "cpu", "what held it back / why"):
        t.add_column(c, overflow="fold")
    for f in result.findings:
        s = _STYLE.get(f.classification, "")
        t.add_row(m(f.task_name), f"[{s}]{m(f.classification)}[/]" if s else m(f.classification),
                  f"{f.evidence.get('wall_s', 0):.2f}s", f"{f.evidence.get('cpu_s', 0):.2f}s",
                  m(f.message) + "\n" + _ev(f.evidence))
    if not result.findings:
        t.add_row("-", "nothing to report", "", "", "no task crossed a threshold")
    con.print(t)

    if result.tool_findings:
        t = Table(title="Findings per tool", title_justify="left")
        for c in ("task", "tool", "classification", "why"):
            t.add_column(c, overflow="fold")
        for f in result.tool_findings:
            t.add_row(m(f.task_name), m(f.tool or ""), m(f.classification), m(f.message))
        con.print(t)


def _recommendations(con: Console, result) -> None:
    t = Table(title="Recommendations per task type", title_justify="left")
    for c in ("task type", "cpus", "memory", "now", "reason"):
        t.add_column(c, overflow="fold")
    trivial = [r for r in result.recommendations if _trivial(r)]
    for r in result.recommendations:
        if r in trivial:
            continue
        now = []
        if r.current_cpus:
            now.append(f"{r.current_cpus:g} cpus")
        if r.current_memory_bytes:
            now.append(fmt_bytes(r.current_memory_bytes))
        reason = m(r.reason) + "".join(f"\n[bold yellow]warning:[/] {m(w)}" for w in r.warnings)
        t.add_row(m(r.task_type), str(r.cpus), fmt_bytes(r.memory_bytes), ", ".join(now) or "-", reason)
    if trivial:
        t.caption = (f"{len(trivial)} more task type(s) ran under {TRIVIAL_WALL_S:g} s in under "
                     f"{TRIVIAL_PEAK >> 20} MiB and got the minimum (1 CPU, 128 MiB): "
                     + ", ".join(m(r.task_type) for r in trivial[:8]) + (", ..." if len(trivial) > 8 else "")
                     + " (all in --format json)")
    con.print(t)


def _comparison(con: Console, result) -> None:
    t = Table(title="Comparison (before -> after, median per task type)", title_justify="left")
    for c in ("task type", "metric", "before", "after", "ratio", "noise", "verdict"):
        t.add_column(c)
    for d in result.comparison:
        if d.metric.endswith("_bytes"):
            b, a = (fmt_bytes(int(x)) if not math.isnan(x) else "-" for x in (d.before, d.after))
        else:
            b, a = (f"{x:.2f}" if not math.isnan(x) else "-" for x in (d.before, d.after))
        verdict = "[bold red]REGRESSION[/]" if d.regression else "[green]improved[/]" if d.improvement else ""
        if d.n_before == 0 or d.n_after == 0:
            verdict = "only in " + ("after" if d.n_before == 0 else "before")
        t.add_row(m(d.task_type), m(d.metric), b, a, f"{d.ratio:.2f}" if d.ratio else "-", f"{d.noise:.2f}", verdict)
    con.print(t)
    changed = getattr(result, "changes", None) or []
    if changed:
        t = Table(title="What changed per task type (before -> after)", title_justify="left")
        for c in ("task type", "what", "change"):
            t.add_column(c, overflow="fold")
        for ch in changed:
            t.add_row(m(ch["task_type"]), m(ch["kind"]), m(ch["message"]))
        con.print(t)


def _cost(con: Console, c: dict) -> None:
    con.print(f"Cost at ${c['price_per_hour_usd']:.4f}/h ({m(c['price_source'])}): run ${c['run_usd']:.4f}, "
              f"used by tasks ${c['used_usd']:.4f}, idle share {100 * c['idle_share']:.0f}% "
              f"(${c['idle_usd']:.4f})")
    if c.get("shape_note"):
        con.print(f"  [bold yellow]note:[/] {c['shape_note']}")
    for s in c.get("savings", []):
        con.print(f"  {m(s['task_type'])}: {s['cpus_freed']:g} CPUs freed -> ${s['usd']:.4f} per run")
    if c.get("instance_suggestion"):
        i = c["instance_suggestion"]
        con.print(f"  instance: {m(i['instance_type'])} ({i['vcpus']} vCPU, {i['memory_gib']:g} GiB, "
                  f"${i['usd_per_hour']}/h): {m(i['reason'])}")
