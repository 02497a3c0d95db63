"""Monthly prices from the offline, dated table shipped in sweep/data/prices.json
(provenance and date: sweep/data/PRICES.md) plus the EC2 instance table tune uses
(analysis/data/aws_ec2_prices.csv), overridable by a JSON file of the same shape
(`--prices FILE`). A region the table lacks is priced at `default_region`'s price,
and the finding's `price_source` says so."""

from __future__ import annotations

import json
from importlib import resources

from ..errors import UsageError


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Prices:
    """`monthly(kind, region, ...) -> (usd, source)`; usd is None where no price is known."""

    def __init__(self, override_path: str | None = None):
        with resources.files("opensre.sweep").joinpath("data/prices.json").open() as f:
            table = json.load(f)
        from ..analysis.cost import price_table

        ec2 = table["ec2"].setdefault(table["default_region"], {})
        for name, it in price_table().items():
            ec2.setdefault(name, it.usd_per_hour)
        if override_path:
            table = _merge(table, _read_override(override_path))
        self.table = table
        self.hours = float(table["hours_per_month"])
        self.as_of = table["as_of"] if not override_path else f"{table['as_of']} + {override_path}"

    def _lookup(self, section: str, region: str, key: str | None = None):
        """(value, region it came from)."""
        for r in (region, self.table["default_region"]):
            v = self.table.get(section, {}).get(r)
            if v is not None and key is not None:
                v = v.get(key)
            if v is not None:
                return float(v), r
        return None, None

    def _source(self, what: str, region: str, got: str | None) -> str:
        if got is None:
            return f"no price for {what} in {region}"
        note = "" if got == region else f" (no {region} price: {got}'s)"
        return f"{what} {got} on-demand, table {self.as_of}{note}"

    def instance(self, instance_type: str, region: str) -> tuple[float | None, str]:
        hourly, got = self._lookup("ec2", region, instance_type)
        return (None if hourly is None else hourly * self.hours), self._source(f"ec2 {instance_type}", region, got)

    def volume(self, volume_type: str, size_gb: float, region: str, iops: int | None = None) -> tuple[float | None, str]:
        per_gb, got = self._lookup("ebs_gb_month", region, volume_type)
        if per_gb is None:
            return None, self._source(f"ebs {volume_type}", region, got)
        usd = per_gb * size_gb
        if iops and volume_type in ("io1", "io2"):
            usd += (self._lookup("ebs_iops_month", region, volume_type)[0] or 0.0) * iops
        elif iops and volume_type == "gp3" and iops > 3000:
            usd += (self._lookup("ebs_iops_month", region, "gp3_above_3000")[0] or 0.0) * (iops - 3000)
        return usd, self._source(f"ebs {volume_type} {size_gb:g} GiB", region, got)

    def snapshot(self, size_gb: float, region: str) -> tuple[float | None, str]:
        per_gb, got = self._lookup("snapshot_gb_month", region)
        # a snapshot is billed for its changed blocks, at most the volume's size: an upper bound
        return (None if per_gb is None else per_gb * size_gb), self._source(f"snapshot <= {size_gb:g} GiB", region, got)

    def hourly(self, section: str, what: str, region: str) -> tuple[float | None, str]:
        """eip_hour, nat_hour."""
        h, got = self._lookup(section, region)
        return (None if h is None else h * self.hours), self._source(what, region, got)


def _read_override(path: str) -> dict:
    try:
        with open(path) as f:
            d = json.load(f)
    except OSError as e:
        raise UsageError(f"--prices {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}:{e.lineno}: not JSON: {e.msg}") from None
    if not isinstance(d, dict):
        raise UsageError(f"{path}: expected a JSON object like sweep/data/prices.json")
    return d
