"""One finding shape for every renderer (text, JSON, HTML): what is wasting money,
since when, the numbers that prove it, what AWS's own rules say about the same data,
what it costs per month and what a person could do (sweep never does it)."""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("idle_instance", "underutilized_instance", "stopped_instance", "unattached_volume", "unassociated_eip",
         "idle_nat_gateway", "old_snapshot", "left_running", "idle_host", "underutilized_host", "idle_gpu")
CONFIDENCE = ("high", "medium", "low")


@dataclass(frozen=True)
class Evidence:
    """One number (or fact) and where it was read: `cloudwatch:CPUUtilization`,
    `ec2:DescribeVolumes`, `store:run 4c87…`, `/proc/1234/stat`."""

    what: str
    value: object
    source: str
    unit: str = ""

    def to_dict(self) -> dict:
        d = {"what": self.what, "value": self.value, "source": self.source}
        if self.unit:
            d["unit"] = self.unit
        return d


@dataclass(frozen=True)
class Finding:
    kind: str
    resource_id: str
    region: str  # an AWS region, or "local" for what the store and /proc say about this host
    detected_at: float  # epoch seconds
    idle_since: float | None
    evidence: tuple[Evidence, ...]
    monthly_cost_usd: float
    suggested_action: str
    confidence: str = "medium"
    # AWS's own rules (Trusted Advisor, Compute Optimizer) applied to the same data: rule -> verdict
    aws_view: dict | None = None
    price_source: str = ""
    detail: dict = field(default_factory=dict)  # what the text line shows beside the id (type, size, name)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if self.confidence not in CONFIDENCE:
            raise ValueError(f"unknown confidence {self.confidence!r}")

    @property
    def idle_duration_s(self) -> float | None:
        return None if self.idle_since is None else max(0.0, self.detected_at - self.idle_since)

    def to_dict(self) -> dict:
        from datetime import datetime, timezone

        iso = lambda t: None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")  # noqa: E731
        d = {"kind": self.kind, "resource_id": self.resource_id, "region": self.region,
             "detected_at": iso(self.detected_at), "idle_since": iso(self.idle_since),
             "idle_duration_s": None if self.idle_duration_s is None else round(self.idle_duration_s),
             "evidence": [e.to_dict() for e in self.evidence], "monthly_cost_usd": round(self.monthly_cost_usd, 2),
             "price_source": self.price_source, "suggested_action": self.suggested_action,
             "confidence": self.confidence, "detail": dict(self.detail)}
        if self.aws_view is not None:
            d["aws_view"] = self.aws_view
        return d


def ranked(findings, min_monthly_cost: float = 0.0) -> list[Finding]:
    """Costliest first; those under `min_monthly_cost` left out (a finding with no price
    is kept at 0 only when no minimum is asked for)."""
    keep = [f for f in findings if f.monthly_cost_usd >= min_monthly_cost]
    return sorted(keep, key=lambda f: (-f.monthly_cost_usd, f.kind, f.resource_id))


def summary(findings: list[Finding], errors: list[str], sources: list[str]) -> dict:
    by_kind: dict[str, dict] = {}
    for f in findings:
        k = by_kind.setdefault(f.kind, {"count": 0, "monthly_cost_usd": 0.0})
        k["count"] += 1
        k["monthly_cost_usd"] = round(k["monthly_cost_usd"] + f.monthly_cost_usd, 2)
    return {"findings": len(findings), "total_monthly_cost_usd": round(sum(f.monthly_cost_usd for f in findings), 2),
            "by_kind": by_kind, "sources": list(sources), "errors": list(errors)}
