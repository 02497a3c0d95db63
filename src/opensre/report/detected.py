"""The runs detected in a host-wide collection, one line each (show, correlate, collect)."""

from __future__ import annotations

from ..term import term


def detected_lines(detected, total: int | None = None, limit: int | None = None) -> str:
    n = sum(r.process_count for r in detected)
    head = f"── {len(detected)} run{'' if len(detected) == 1 else 's'} detected"
    if total is not None:
        head += f", {total - n} of {total} processes unattributed"
    lines = [head + " ──"]
    shown = detected if limit is None else detected[:limit]
    for r in shown:
        lines.append(f"  run {r.run_id}  {r.process_count:>6} processes  {r.status:<10}  {term(r.name)}")
    if len(shown) < len(detected):
        lines.append(f"  … and {len(detected) - len(shown)} more")
    return "\n".join(lines)
