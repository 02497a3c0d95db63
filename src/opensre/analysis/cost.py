"""Cost when a price is known: a price per host-hour (given, or an instance type
looked up in the bundled offline table, data/aws_ec2_prices.csv, source and date
in data/PRICES.md). A run costs its wall time on the host; a task or tool costs
the core-seconds it used at price/cores per second, over the cores of the host
that was observed (not the named type's: the run used the host it ran on); what
no task used is the idle share. A recommendation saves the cores it frees for the
task's wall time. Suggested types have the observed host's architecture."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import UsageError
from ..model import tool_label


@dataclass(frozen=True)
class InstanceType:
    name: str
    vcpus: int
    memory_gib: float
    usd_per_hour: float

    @property
    def arch(self) -> str:
        """arm64 for AWS Graviton types (a `g` among the letters after the generation:
        c7g, m6gd, c6gn, t4g), else x86_64 (Intel `i`, AMD `a`, or none)."""
        return arch_of_type(self.name)


def arch_of_type(name: str) -> str:
    m = re.match(r"^([a-z]+)(\d+)([a-z-]*)\.", name)
    return "arm64" if m and "g" in m.group(3).split("-")[0] else "x86_64"


def normal_arch(machine: str | None) -> str | None:
    """uname's machine in the price table's terms: x86_64 or arm64 (None: unknown)."""
    m = (machine or "").lower()
    if m in ("x86_64", "amd64", "x64"):
        return "x86_64"
    if m in ("aarch64", "arm64", "armv8l"):
        return "arm64"
    return m or None


@lru_cache(maxsize=1)
def price_table() -> dict[str, InstanceType]:
    with resources.files("opensre.analysis").joinpath("data/aws_ec2_prices.csv").open() as f:
        return {r["instance_type"]: InstanceType(r["instance_type"], int(r["vcpus"]), float(r["memory_gib"]),
                                                 float(r["usd_per_hour"])) for r in csv.DictReader(f)}


def instance(name: str) -> InstanceType:
    t = price_table().get(name)
    if t is None:
        fams = sorted({k.split(".")[0] for k in price_table()})
        raise UsageError(f"unknown instance type {name!r}", f"the bundled table has {', '.join(fams)}; "
                         "or give --price-per-hour")
    return t


def cheapest_fit(cpus: int, memory_bytes: int, arch: str | None = None) -> InstanceType | None:
    """The cheapest type with at least these CPUs and memory, of that architecture
    (x86_64, arm64) when given."""
    fits = [t for t in price_table().values() if t.vcpus >= cpus and t.memory_gib * 2**30 >= memory_bytes
            and (arch is None or t.arch == arch)]
    return min(fits, key=lambda t: (t.usd_per_hour, t.vcpus, t.name), default=None)


def host_arch(host) -> str | None:
    """The observed host's architecture: stored (schema v11), else named in its kernel
    release (Debian's `-amd64`/`-arm64`, Fedora's `.x86_64`/`.aarch64`), else None."""
    if host is None:
        return None
    a = normal_arch(getattr(host, "arch", ""))
    if a:
        return a
    rel = (host.kernel or "").lower()
    for token, arch in (("x86_64", "x86_64"), ("amd64", "x86_64"), ("aarch64", "arm64"), ("arm64", "arm64")):
        if token in rel:
            return arch
    return None


def shape_differences(it: InstanceType, host) -> list[str]:
    """How a named instance type differs from the observed host: CPUs, memory (beyond
    5%), architecture. Empty when they match or the host is unknown."""
    if host is None:
        return []
    out = []
    if host.cpus and host.cpus != it.vcpus:
        out.append(f"{it.vcpus} vCPUs, the host had {host.cpus}")
    gib = (host.mem_bytes or 0) / 2**30
    if gib and abs(gib - it.memory_gib) > 0.05 * it.memory_gib:
        out.append(f"{it.memory_gib:g} GiB, the host had {gib:.1f} GiB")
    arch = host_arch(host)
    if arch and arch != it.arch:
        out.append(f"{it.arch}, the host was {arch}")
    return out


def run_cost(run_wall_s: float, host_cpus: int, price_per_hour: float, tasks, tools, recommendations,
             source: str) -> dict:
    per_core_s = price_per_hour / 3600 / max(host_cpus, 1)
    run_usd = run_wall_s * price_per_hour / 3600
    task_cost = {t.task_id: t.cpu_ns / 1e9 * per_core_s for t in tasks}
    used = sum(task_cost.values())
    tool_cost: dict[str, float] = {}
    for u in tools:
        k = tool_label(u.tool, u.subcommand)
        tool_cost[k] = tool_cost.get(k, 0.0) + u.cpu_ns / 1e9 * per_core_s
    savings = []
    by_type: dict[str, list] = {}
    for t in tasks:
        by_type.setdefault(t.task_type, []).append(t)
    for r in recommendations:
        if r.current_cpus and r.current_cpus > r.cpus:
            freed = sum((r.current_cpus - r.cpus) * t.wall_ns / 1e9 for t in by_type.get(r.task_type, ()))
            savings.append({"task_type": r.task_type, "cpus_freed": r.current_cpus - r.cpus,
                            "core_seconds_freed": round(freed, 3), "usd": round(freed * per_core_s, 6)})
    return {"price_per_hour_usd": price_per_hour, "price_source": source, "host_cpus": host_cpus,
            "run_usd": round(run_usd, 6), "used_usd": round(used, 6), "idle_usd": round(max(run_usd - used, 0.0), 6),
            "idle_share": round(max(run_usd - used, 0.0) / run_usd, 4) if run_usd else 0.0,
            "tasks_usd": {k: round(v, 6) for k, v in task_cost.items()},
            "tools_usd": {k: round(v, 6) for k, v in sorted(tool_cost.items(), key=lambda kv: -kv[1])},
            "savings": savings}
