"""A small AWS account with known waste and busy look-alikes, seeded into a real AWS
API (moto's server) with boto3, CloudWatch datapoints included (moto synthesises none).
Shared by tests/e2e/test_sweep.py and bench/sweep_scale.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

REGION = "us-east-1"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def clients(endpoint: str):
    import boto3

    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    return boto3.client("ec2", **kw), boto3.client("cloudwatch", **kw)


def launch(ec2, itype: str, name: str, count: int = 1) -> list[str]:
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    got = ec2.run_instances(ImageId=ami, InstanceType=itype, MinCount=count, MaxCount=count,
                            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}])
    return [i["InstanceId"] for i in got["Instances"]]


def put_hourly(cw, instance_id: str, cpu, net_bytes_per_hour: float, hours: int = 14 * 24) -> None:
    """`cpu(hour_index) -> %` for each of the last `hours` hours, and network in/out."""
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    dims = [{"Name": "InstanceId", "Value": instance_id}]
    data = []
    for k in range(1, hours + 1):
        t = now - timedelta(hours=k)
        data.append({"MetricName": "CPUUtilization", "Dimensions": dims, "Timestamp": t, "Value": cpu(k), "Unit": "Percent"})
        for m in ("NetworkIn", "NetworkOut"):
            data.append({"MetricName": m, "Dimensions": dims, "Timestamp": t, "Value": net_bytes_per_hour / 2, "Unit": "Bytes"})
    for i in range(0, len(data), 500):
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=data[i:i + 500])


def seed(endpoint: str) -> dict:
    """The account of the Done-when; returns the ids the test checks."""
    ec2, cw = clients(endpoint)
    idle, = launch(ec2, "m5.xlarge", "idle-worker")
    busy, = launch(ec2, "t3.large", "busy-web")
    batch, = launch(ec2, "m5.large", "nightly-batch")
    put_hourly(cw, idle, lambda k: 1.5 + 0.3 * ((k % 5) - 2) / 2, 80_000)  # ~1.5% CPU, 1.9 MB/day
    put_hourly(cw, busy, lambda k: 55 + (k % 20), 400e6)
    put_hourly(cw, batch, lambda k: 85.0 if k % 24 == 3 else 1.0, 50_000)  # 1 h a night at 85%: TA calls it idle
    az = ec2.describe_instances(InstanceIds=[busy])["Reservations"][0]["Instances"][0]["Placement"]["AvailabilityZone"]
    waste_vol = ec2.create_volume(Size=500, VolumeType="gp3", AvailabilityZone=az)["VolumeId"]
    used_vol = ec2.create_volume(Size=100, VolumeType="gp3", AvailabilityZone=az)["VolumeId"]
    ec2.attach_volume(VolumeId=used_vol, InstanceId=busy, Device="/dev/sdf")
    free_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    used_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.associate_address(AllocationId=used_eip, InstanceId=busy)
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    nat_eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet, AllocationId=nat_eip)["NatGateway"]["NatGatewayId"]
    now = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    zeros = [{"MetricName": m, "Dimensions": [{"Name": "NatGatewayId", "Value": nat}], "Timestamp": now - timedelta(days=d),
              "Value": 0.0, "Unit": "Bytes"} for d in range(1, 31)
             for m in ("BytesOutToDestination", "BytesOutToSource", "BytesInFromDestination", "BytesInFromSource")]
    for i in range(0, len(zeros), 500):
        cw.put_metric_data(Namespace="AWS/NATGateway", MetricData=zeros[i:i + 500])
    return {"idle": idle, "busy": busy, "batch": batch, "waste_vol": waste_vol, "used_vol": used_vol,
            "free_eip": free_eip, "used_eip": used_eip, "nat": nat, "nat_eip": nat_eip}


def snapshot(endpoint: str) -> dict:
    """Everything a sweep could touch, as Describe/List outputs (request ids dropped)."""
    ec2, cw = clients(endpoint)
    calls = {"instances": ec2.describe_instances, "volumes": ec2.describe_volumes, "addresses": ec2.describe_addresses,
             "nat": ec2.describe_nat_gateways, "snapshots": lambda: ec2.describe_snapshots(OwnerIds=["self"]),
             "metrics": cw.list_metrics, "alarms": cw.describe_alarms}
    out = {}
    for k, call in calls.items():
        r = call()
        r.pop("ResponseMetadata", None)
        out[k] = r
    return out
