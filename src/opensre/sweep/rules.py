"""The rules, as pure functions over CloudWatch numbers: ours, and beside it the
Trusted Advisor and Compute Optimizer rules applied to the same data, so a reader sees
where we agree with AWS and where not (docs/sweep.md, "Rules").

`Hourly` is one hour of an instance: CPUUtilization average and maximum (%), and
NetworkIn + NetworkOut (bytes)."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86400.0
MB = 1_000_000


@dataclass(frozen=True)
class Hourly:
    t: float  # epoch seconds, the hour's start
    cpu_avg: float
    cpu_max: float
    net_bytes: float


@dataclass(frozen=True)
class Thresholds:
    """Ours (CloudWatch only): idle = the 99th percentile of hourly CPU <= idle_cpu_pct and
    a median day's network <= idle_net_mb_day; underutilised = not idle, the 95th percentile
    of hourly CPU <= under_cpu_pct and no hour above under_peak_pct."""

    lookback_days: int = 14
    min_hours: int = 48
    idle_cpu_pct: float = 5.0
    idle_net_mb_day: float = 5.0
    under_cpu_pct: float = 20.0
    under_peak_pct: float = 40.0
    stopped_days: float = 7.0
    snapshot_days: float = 90.0


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else 0.0


def days(hours: list[Hourly]) -> list[tuple[float, float]]:
    """Per day with data: (average CPU %, network bytes)."""
    by: dict[int, list[Hourly]] = {}
    for h in hours:
        by.setdefault(int(h.t // DAY), []).append(h)
    return [(sum(h.cpu_avg for h in hs) / len(hs), sum(h.net_bytes for h in hs)) for _, hs in sorted(by.items())]


def ours(hours: list[Hourly], th: Thresholds) -> tuple[str | None, dict]:
    """('idle_instance' | 'underutilized_instance' | None, the numbers)."""
    if len(hours) < th.min_hours:
        return None, {"hours_of_data": len(hours), "verdict": f"insufficient data (< {th.min_hours} h)"}
    cpu = [h.cpu_avg for h in hours]
    nums = {"hours_of_data": len(hours), "cpu_p99_pct": round(percentile(cpu, 0.99), 2),
            "cpu_p95_pct": round(percentile(cpu, 0.95), 2), "cpu_peak_hour_pct": round(max(cpu), 2),
            "net_mb_median_day": round(percentile([n for _, n in days(hours)], 0.5) / MB, 3)}
    if nums["cpu_p99_pct"] <= th.idle_cpu_pct and nums["net_mb_median_day"] <= th.idle_net_mb_day:
        return "idle_instance", nums
    if nums["cpu_p95_pct"] <= th.under_cpu_pct and nums["cpu_peak_hour_pct"] <= th.under_peak_pct:
        return "underutilized_instance", nums
    return None, nums


def trusted_advisor(hours: list[Hourly]) -> dict:
    """Low Utilization Amazon EC2 Instances: daily average CPU <= 10% and network
    <= 5 MB on at least 4 of the last 14 days."""
    low = sum(1 for cpu, net in days(hours)[-14:] if cpu <= 10.0 and net <= 5 * MB)
    return {"check": "Low Utilization Amazon EC2 Instances", "rule": "daily CPU avg <= 10% and network <= 5 MB "
            "on >= 4 of 14 days", "low_days": low, "flagged": low >= 4}


def compute_optimizer(hours: list[Hourly], lookback_days: int = 14) -> dict:
    """Idle: peak CPU < 5% over the lookback, with at least 30 hours of data."""
    peak = max((h.cpu_max for h in hours), default=0.0)
    finding = "InsufficientData" if len(hours) < 30 else ("Idle" if peak < 5.0 else "NotIdle")
    return {"finding": finding, "rule": "peak CPU < 5% over 14 days, >= 30 h of data",
            "lookBackPeriodInDays": lookback_days,
            "utilizationMetrics": [{"name": "CPU", "statistic": "MAXIMUM", "value": round(peak, 2)}]}


def idle_since(hours: list[Hourly], th: Thresholds) -> float | None:
    """The hour after the last one that did work (CPU or network above our idle line);
    the first hour seen when none did: idle at least since then."""
    if not hours:
        return None
    hourly_net = th.idle_net_mb_day * MB / 24
    busy = [h.t for h in hours if h.cpu_avg > th.idle_cpu_pct or h.net_bytes > 10 * hourly_net]
    return busy[-1] + 3600 if busy else hours[0].t


def confidence(verdict: str, hours: list[Hourly], ta: dict, co: dict) -> str:
    agree = (ta["flagged"] and co["finding"] == "Idle") if verdict == "idle_instance" else ta["flagged"]
    if len(hours) >= 7 * 24 and agree:
        return "high"
    return "medium" if len(hours) >= 72 else "low"
