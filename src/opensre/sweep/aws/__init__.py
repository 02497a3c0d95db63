"""The AWS inventory side of sweep: per region, EC2 (instances with CloudWatch,
volumes, Elastic IPs, NAT gateways, snapshots), read through `ReadOnlyAWS` only.
A service that cannot be read is one line in `errors`; the others are still swept."""

from __future__ import annotations

from datetime import datetime

from .. import rules
from ..finding import Finding
from . import ec2 as ec2_, storage
from .session import ReadOnlyAWS, aws_errors, refuse_writes, service_error

__all__ = ["sweep_aws", "ReadOnlyAWS", "refuse_writes"]


def sweep_aws(aws: ReadOnlyAWS, prices, th: rules.Thresholds, now: datetime) -> tuple[list[Finding], dict, int]:
    """(findings, log, how many services were read); log["errors"]: one line per service
    that failed; log["aws_only"]: instances AWS's rules flag and ours do not, with both views."""
    findings: list[Finding] = []
    log: dict = {"errors": [], "aws_only": []}
    read = 0
    for region in aws.regions:
        ec2 = aws.client("ec2", region)
        steps = _steps(aws, ec2, region, prices, th, now, log)
        for label, step in steps:
            try:
                findings.extend(step())
                read += 1
            except aws_errors() as e:
                log["errors"].append(service_error(label, region, e))
    return findings, log, read


def _steps(aws, ec2, region, prices, th, now, log):
    """The region's sections, in order; instances and volumes are read once and shared."""
    got: dict = {}

    def inst():
        got["instances"] = ec2_.instances(ec2)
        return ec2_.running_findings(aws, region, got["instances"], prices, th, now, log)

    def vols():
        got["volumes"] = storage.volumes(ec2)
        found = storage.unattached_volumes(region, got["volumes"], prices, now)
        if "instances" in got:
            found += ec2_.stopped_findings(region, got["instances"], got["volumes"], prices, th, now)
        return found

    return [("ec2:instances", inst), ("ec2:volumes", vols),
            ("ec2:addresses", lambda: storage.unassociated_eips(ec2, region, prices, now)),
            ("ec2:nat-gateways", lambda: storage.idle_nat_gateways(ec2, aws.client("cloudwatch", region), region,
                                                                   prices, now)),
            ("ec2:snapshots", lambda: storage.old_snapshots(ec2, region, prices, th, now))]
