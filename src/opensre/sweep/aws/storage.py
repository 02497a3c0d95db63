"""What is billed while nothing uses it: unattached volumes, unassociated Elastic IPs,
NAT gateways that move no bytes, old snapshots."""

from __future__ import annotations

from datetime import datetime, timedelta

from .. import rules
from ..finding import Evidence, Finding

NAT_METRICS = ("BytesOutToDestination", "BytesOutToSource", "BytesInFromDestination", "BytesInFromSource")
NAT_LOOKBACK_DAYS = 30


def volumes(ec2) -> dict[str, dict]:
    return {v["VolumeId"]: v for page in ec2.get_paginator("describe_volumes").paginate() for v in page["Volumes"]}


def unattached_volumes(region: str, vols: dict[str, dict], prices, now: datetime) -> list[Finding]:
    out = []
    for v in vols.values():
        if v["State"] != "available":
            continue
        usd, src = prices.volume(v["VolumeType"], v["Size"], region, v.get("Iops"))
        created = v["CreateTime"].timestamp()
        days = (now.timestamp() - created) / rules.DAY
        ev = (Evidence("state", "available (attached to nothing)", "ec2:DescribeVolumes"),
              Evidence("size", v["Size"], "ec2:DescribeVolumes", "GiB"),
              Evidence("volume_type", v["VolumeType"], "ec2:DescribeVolumes"),
              Evidence("created", v["CreateTime"].isoformat(timespec="seconds"), "ec2:DescribeVolumes"))
        view = {"trusted_advisor": {"check": "Underutilized Amazon EBS Volumes", "rule": "unattached, or < 1 IOPS/day "
                                    "for 7 days", "flagged": True},
                "compute_optimizer": {"finding": "Idle" if days >= 32 else "InsufficientData",
                                      "rule": "unattached for 32 days", "lookBackPeriodInDays": 32}}
        # the API keeps no detach time: unattached at least since we look, at most since its creation
        out.append(Finding("unattached_volume", v["VolumeId"], region, now.timestamp(), created, ev, usd or 0.0,
                           f"snapshot {v['VolumeId']} if its data matters, then delete it", "high", view, src,
                           {"size_gib": v["Size"], "volume_type": v["VolumeType"]}))
    return out


def unassociated_eips(ec2, region: str, prices, now: datetime) -> list[Finding]:
    out = []
    for a in ec2.describe_addresses()["Addresses"]:
        if a.get("AssociationId") or a.get("InstanceId") or a.get("NetworkInterfaceId"):
            continue
        usd, src = prices.hourly("eip_hour", "public IPv4 (Elastic IP)", region)
        rid = a.get("AllocationId") or a["PublicIp"]
        ev = (Evidence("association", "none", "ec2:DescribeAddresses"),
              Evidence("public_ip", a["PublicIp"], "ec2:DescribeAddresses"))
        view = {"trusted_advisor": {"check": "Unassociated Elastic IP Addresses",
                                    "rule": "not associated with a running instance", "flagged": True}}
        out.append(Finding("unassociated_eip", rid, region, now.timestamp(), None, ev, usd or 0.0,
                           f"release {a['PublicIp']} ({rid}) unless it is reserved for a reason", "high", view, src,
                           {"public_ip": a["PublicIp"]}))
    return out


def nat_bytes(cw, nat_id: str, now: datetime) -> tuple[float, int]:
    """(bytes moved, days with datapoints) over the last 30 days."""
    total, days = 0.0, set()
    for metric in NAT_METRICS:
        got = cw.get_metric_statistics(Namespace="AWS/NATGateway", MetricName=metric, Statistics=["Sum"], Period=86400,
                                       Dimensions=[{"Name": "NatGatewayId", "Value": nat_id}],
                                       StartTime=now - timedelta(days=NAT_LOOKBACK_DAYS), EndTime=now)
        for p in got["Datapoints"]:
            total += p["Sum"]
            days.add(p["Timestamp"].date())
    return total, len(days)


def idle_nat_gateways(ec2, cw, region: str, prices, now: datetime) -> list[Finding]:
    out = []
    for page in ec2.get_paginator("describe_nat_gateways").paginate():
        for n in page["NatGateways"]:
            if n["State"] != "available":
                continue
            moved, days = nat_bytes(cw, n["NatGatewayId"], now)
            if moved > 0:
                continue
            usd, src = prices.hourly("nat_hour", "NAT gateway", region)
            ev = (Evidence("bytes_30d", 0, "cloudwatch:AWS/NATGateway " + ",".join(NAT_METRICS) + " (Sum, 1 d)", "B"),
                  Evidence("days_with_datapoints", days, "cloudwatch:AWS/NATGateway"))
            view = {"trusted_advisor": {"check": "idle NAT gateway", "rule": "0 bytes in 30 days",
                                        "flagged": days >= 30},
                    "compute_optimizer": {"finding": "Idle" if days >= 32 else "InsufficientData",
                                          "rule": "no traffic over 32 days", "lookBackPeriodInDays": 32}}
            created = n["CreateTime"].timestamp()
            out.append(Finding("idle_nat_gateway", n["NatGatewayId"], region, now.timestamp(),
                               max(created, now.timestamp() - NAT_LOOKBACK_DAYS * rules.DAY), ev, usd or 0.0,
                               f"delete NAT gateway {n['NatGatewayId']} (and release its EIP) if no route needs it",
                               "high" if days >= 7 else "medium" if days else "low", view, src,
                               {"vpc": n.get("VpcId", "")}))
    return out


def old_snapshots(ec2, region: str, prices, th: rules.Thresholds, now: datetime) -> list[Finding]:
    out = []
    for page in ec2.get_paginator("describe_snapshots").paginate(OwnerIds=["self"]):
        for s in page["Snapshots"]:
            age = (now.timestamp() - s["StartTime"].timestamp()) / rules.DAY
            if age < th.snapshot_days:
                continue
            usd, src = prices.snapshot(s.get("VolumeSize", 0), region)
            ev = (Evidence("age_days", round(age, 1), "ec2:DescribeSnapshots StartTime"),
                  Evidence("volume_size", s.get("VolumeSize", 0), "ec2:DescribeSnapshots", "GiB"))
            out.append(Finding("old_snapshot", s["SnapshotId"], region, now.timestamp(), s["StartTime"].timestamp(), ev,
                               usd or 0.0, f"delete {s['SnapshotId']} if no restore or AMI needs it", "low", None, src,
                               {"description": s.get("Description", "")[:60]}))
    return out
