"""sweep's findings as text (one screen a person acts on) and JSON."""

from __future__ import annotations

import json


def to_json(result) -> str:
    return json.dumps(result.to_dict(), indent=2)


def _age(s) -> str:
    if s is None:
        return "—"
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{s / n:.1f}{unit}"
    return f"{s:.0f}s"


def _aws(f) -> str:
    v = f.aws_view or {}
    parts = []
    if "trusted_advisor" in v:
        parts.append("TA " + ("flags" if v["trusted_advisor"].get("flagged") else "no"))
    if "compute_optimizer" in v:
        parts.append("CO " + v["compute_optimizer"].get("finding", "?"))
    return ", ".join(parts) or "—"


def to_text(result, limit: int = 25) -> str:
    d = result.to_dict()["summary"]
    lines = [f"sweep: {d['findings']} findings, ${d['total_monthly_cost_usd']:,.2f}/month "
             f"(read: {'; '.join(d['sources']) or 'nothing'})"]
    if result.findings:
        lines.append(f"{'$/month':>9}  {'kind':<22} {'resource':<28} {'region':<10} {'idle for':>9}  {'AWS rules':<18} do")
    for f in result.findings[:limit]:
        extra = " ".join(str(v) for v in f.detail.values() if v not in ("", None))[:30]
        lines.append(f"{f.monthly_cost_usd:>9,.2f}  {f.kind:<22} {f.resource_id:<28} {f.region:<10} "
                     f"{_age(f.idle_duration_s):>9}  {_aws(f):<18} {f.suggested_action}" + (f"  [{extra}]" if extra else ""))
    if len(result.findings) > limit:
        lines.append(f"... {len(result.findings) - limit} more (--format json lists all, with their evidence)")
    lines += [f"cannot read {e}" for e in result.errors]
    return "\n".join(lines) + "\n"
