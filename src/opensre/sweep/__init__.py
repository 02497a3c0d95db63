"""`sweep`: read-only discovery of compute that costs money and does no work, from
execution data (a StoreReader: the store or a lake, plus the live /proc) and, when
asked, AWS inventory (boto3 through clients that can only Describe/Get/List).
Findings share one shape (finding.py), priced from an offline dated table (prices.py),
ranked by monthly cost. Nothing here prints, exits, or changes anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from .finding import KINDS, Evidence, Finding, ranked, summary
from .prices import Prices
from .rules import Thresholds

__all__ = ["sweep", "SweepResult", "Finding", "Evidence", "KINDS", "Prices", "Thresholds"]


@dataclass
class SweepResult:
    findings: list[Finding]
    errors: list[str] = field(default_factory=list)  # one line per source that could not be read
    sources: list[str] = field(default_factory=list)  # what was read
    aws_only: list[dict] = field(default_factory=list)  # flagged by TA/CO rules, not by ours: both views

    @property
    def nothing_read(self) -> bool:
        return not self.sources

    def to_dict(self) -> dict:
        return {"findings": [f.to_dict() for f in self.findings],
                "summary": {**summary(self.findings, self.errors, self.sources), "aws_rules_only": self.aws_only}}


def sweep(reader=None, aws=None, prices: Prices | None = None, thresholds: Thresholds | None = None,
          live=None, min_monthly_cost: float = 0.0, now: datetime | None = None) -> SweepResult:
    """reader: a StoreReader (or None); aws: a `aws.ReadOnlyAWS` (or None); live: an
    `execution.LiveProcs` (default: this host's /proc)."""
    now = now or datetime.now(timezone.utc)
    prices = prices or Prices()
    th = thresholds or Thresholds()
    found: list[Finding] = []
    res = SweepResult([])
    if reader is not None:
        from .execution import LiveProcs, left_running

        found += left_running(reader, live or LiveProcs(), now.timestamp())
        res.sources.append(f"store {reader.path}")
    if aws is not None:
        from .aws import sweep_aws

        got, log, read = sweep_aws(aws, prices, th, now)
        found += got
        res.errors += log["errors"]
        res.aws_only += log["aws_only"]
        if read:
            res.sources.append(f"aws {','.join(aws.regions)} ({read} services)")
    res.findings = ranked(found, min_monthly_cost)
    return res
