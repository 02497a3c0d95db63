"""The report's tune section: `opensre.analysis.tune` over the run, as JSON, with
what the task rows borrow from it (what each task was given, its classification)."""

from __future__ import annotations

from ..errors import OpenSREError

__all__ = ["tune_section", "SNIPPET_FORMATS"]

SNIPPET_FORMATS = ("nextflow", "snakemake", "slurm", "k8s")


def _snippets(res, emit) -> dict:
    snippets = {}
    for fmt in SNIPPET_FORMATS:
        try:
            snippets[fmt] = emit(res, fmt)
        except Exception as e:  # noqa: BLE001 - one format failing leaves the others
            snippets[fmt] = f"# {fmt}: {type(e).__name__}: {e}"
    return snippets


def _cost(d: dict):
    cost = d.get("cost")
    if isinstance(cost, dict):  # per-task and per-tool prices: the 50 dearest of each
        cost = dict(cost)
        for k in ("tasks_usd", "tools_usd"):
            if isinstance(cost.get(k), dict) and len(cost[k]) > 50:
                cost[k] = dict(sorted(cost[k].items(), key=lambda kv: -(kv[1] or 0))[:50])
    return cost


def tune_section(store, run_ids: list[str], max_findings: int, options: dict) -> dict:
    """The tune section. tune is optional here: without it the report still renders.
    "_given" (task id -> cpus, memory, type, OOM limit) is for the task rows, not the page."""
    try:
        from .. import analysis

        tune, emit = analysis.tune, analysis.emit
    except (ImportError, AttributeError) as e:
        return {"available": False, "message": f"tune unavailable ({e})"}
    try:
        res = tune(store, run_ids, **options)
    except OpenSREError as e:
        return {"available": False, "message": f"tune: {e.one_line()}"}
    except Exception as e:  # an analysis bug must not cost the user the rest of the report
        return {"available": False, "message": f"tune failed: {type(e).__name__}: {e}"}
    d = res.to_json()
    given = {}
    for t in d.get("tasks") or []:
        g = t.get("given") or {}
        given[t["task_id"]] = (g.get("cpus"), g.get("memory_bytes"), t.get("task_type"), t.get("oom_limit_bytes"))
    findings = d.get("findings") or []
    tool_findings = d.get("tool_findings") or []
    return {"available": True, "message": "", "findings": findings[:max_findings],
            "tool_findings": tool_findings[:max_findings], "recommendations": d.get("recommendations") or [],
            "cost": _cost(d), "comparison": d.get("comparison"), "host": d.get("host"),
            "options": d.get("options"), "snippets": _snippets(res, emit), "_given": given,
            "findings_total": len(findings), "tool_findings_total": len(tool_findings)}
