"""EC2 instances: running ones judged on 14 days of CloudWatch (ours, Trusted
Advisor's and Compute Optimizer's rules side by side), stopped ones by how long they
have been stopped and what their volumes still cost."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from .. import rules
from ..finding import Evidence, Finding

CW_WORKERS = 8
_STOPPED_AT = re.compile(r"\((\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}) GMT\)")


def instances(ec2) -> list[dict]:
    out = []
    for page in ec2.get_paginator("describe_instances").paginate():
        for r in page["Reservations"]:
            out.extend(r["Instances"])
    return out


def hourly(cw, instance_id: str, now: datetime, lookback_days: int) -> list[rules.Hourly]:
    """CPUUtilization (Average, Maximum) and NetworkIn + NetworkOut (Sum) per hour."""
    from datetime import timedelta

    ask = dict(Namespace="AWS/EC2", Dimensions=[{"Name": "InstanceId", "Value": instance_id}],
               StartTime=now - timedelta(days=lookback_days), EndTime=now, Period=3600)
    cpu = cw.get_metric_statistics(MetricName="CPUUtilization", Statistics=["Average", "Maximum"], **ask)
    net: dict[float, float] = {}
    for metric in ("NetworkIn", "NetworkOut"):
        for p in cw.get_metric_statistics(MetricName=metric, Statistics=["Sum"], **ask)["Datapoints"]:
            t = p["Timestamp"].timestamp()
            net[t] = net.get(t, 0.0) + p["Sum"]
    pts = [rules.Hourly(p["Timestamp"].timestamp(), p["Average"], p["Maximum"], net.get(p["Timestamp"].timestamp(), 0.0))
           for p in cpu["Datapoints"]]
    return sorted(pts, key=lambda h: h.t)


def name_of(inst: dict) -> str:
    return next((t["Value"] for t in inst.get("Tags", []) if t["Key"] == "Name"), "")


def running_findings(aws, region: str, insts: list[dict], prices, th: rules.Thresholds, now: datetime,
                     log: dict) -> list[Finding]:
    """idle_instance / underutilized_instance from CloudWatch; a CloudWatch failure is one
    line in log["errors"]; instances AWS's rules flag and ours do not go to log["aws_only"]."""
    from .session import aws_errors, service_error

    running = [i for i in insts if i["State"]["Name"] == "running"]
    if not running:
        return []
    cw = aws.client("cloudwatch", region)
    try:
        with ThreadPoolExecutor(CW_WORKERS) as pool:
            series = list(pool.map(lambda i: hourly(cw, i["InstanceId"], now, th.lookback_days), running))
    except aws_errors() as e:
        log["errors"].append(service_error("cloudwatch", region, e))
        return []
    out = []
    for inst, hours in zip(running, series):
        f = _judge(inst, hours, region, prices, th, now)
        if f:
            out.append(f)
        else:
            _disagreement(inst, hours, region, th, log)
    return out


def _disagreement(inst: dict, hours: list[rules.Hourly], region: str, th, log: dict) -> None:
    ta, co = rules.trusted_advisor(hours), rules.compute_optimizer(hours, th.lookback_days)
    if ta["flagged"] or co["finding"] == "Idle":
        log["aws_only"].append({"resource_id": inst["InstanceId"], "region": region, "ours": rules.ours(hours, th)[1],
                                "trusted_advisor": ta, "compute_optimizer": co})


def _judge(inst: dict, hours: list[rules.Hourly], region: str, prices, th, now: datetime) -> Finding | None:
    verdict, nums = rules.ours(hours, th)
    if verdict is None:
        return None
    ta, co = rules.trusted_advisor(hours), rules.compute_optimizer(hours, th.lookback_days)
    itype = inst["InstanceType"]
    usd, src = prices.instance(itype, region)
    if usd is not None and verdict == "underutilized_instance":
        usd /= 2  # one size down halves the price within a family
    ev = tuple(Evidence(k, v, "cloudwatch:AWS/EC2 CPUUtilization,NetworkIn,NetworkOut (1 h)") for k, v in nums.items())
    idle = verdict == "idle_instance"
    action = (f"stop or terminate {inst['InstanceId']} (snapshot its volumes first if needed)" if idle else
              f"move {inst['InstanceId']} to a type with half the vCPUs of {itype}")
    return Finding(verdict, inst["InstanceId"], region, now.timestamp(),
                   rules.idle_since(hours, th) if idle else None, ev, usd or 0.0, action,
                   rules.confidence(verdict, hours, ta, co), {"trusted_advisor": ta, "compute_optimizer": co},
                   src, {"instance_type": itype, "name": name_of(inst)})


def stopped_findings(region: str, insts: list[dict], volumes: dict[str, dict], prices, th, now: datetime) -> list[Finding]:
    """Stopped for at least th.stopped_days with volumes that are still billed."""
    out = []
    for inst in insts:
        if inst["State"]["Name"] != "stopped":
            continue
        m = _STOPPED_AT.search(inst.get("StateTransitionReason", ""))
        since = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp() if m else None
        if since is None or now.timestamp() - since < th.stopped_days * rules.DAY:
            continue
        vols = [volumes[b["Ebs"]["VolumeId"]] for b in inst.get("BlockDeviceMappings", [])
                if "Ebs" in b and b["Ebs"]["VolumeId"] in volumes]
        costs = [prices.volume(v["VolumeType"], v["Size"], region, v.get("Iops")) for v in vols]
        usd = sum(c for c, _ in costs if c)
        ev = (Evidence("state", "stopped", "ec2:DescribeInstances StateTransitionReason"),
              Evidence("volumes", [f"{v['VolumeId']} {v['VolumeType']} {v['Size']} GiB" for v in vols],
                       "ec2:DescribeVolumes"))
        days_stopped = (now.timestamp() - since) / rules.DAY
        ta = {"check": "stopped instance", "rule": "stopped > 30 days", "flagged": days_stopped > 30}
        out.append(Finding("stopped_instance", inst["InstanceId"], region, now.timestamp(), since, ev, usd,
                           f"snapshot and delete the volumes of {inst['InstanceId']}, or terminate it",
                           "high", {"trusted_advisor": ta}, "; ".join(s for _, s in costs),
                           {"instance_type": inst["InstanceType"], "name": name_of(inst)}))
    return out
