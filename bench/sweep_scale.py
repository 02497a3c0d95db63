"""Scale of `opensre sweep --aws`: an account of N instances (default 1,000) in a real
AWS API (moto's server, started here on a loopback port), each with 14 days of hourly
CloudWatch CPU and network datapoints for `--with-metrics` of them (default 100: moto
scans every stored datapoint on each GetMetricStatistics call, so a fully metered
1,000-instance account measures moto's scan more than sweep), plus the seeded waste of
tests/e2e/sweep_account.py. Times the CLI as a subprocess (JSON output), best of --reps.

usage: python bench/sweep_scale.py [--instances N] [--with-metrics N] [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from conftest import free_port, start_moto  # noqa: E402
from sweep_account import CREDS, clients, launch, put_hourly, seed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--with-metrics", type=int, default=100)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    port = free_port()
    moto = start_moto(port)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        t = time.monotonic()
        seed(endpoint)
        ec2, cw = clients(endpoint)
        ids = []
        for i in range(0, a.instances - 3, 250):
            ids += launch(ec2, "m5.large", f"fleet-{i}", min(250, a.instances - 3 - i))
        for k, iid in enumerate(ids[:a.with_metrics]):
            put_hourly(cw, iid, (lambda h: 1.0) if k % 2 else (lambda h: 50.0 + h % 10), 10_000)
        print(f"seeded {len(ids) + 3} instances ({a.with_metrics + 3} with 14 d of metrics) in {time.monotonic() - t:.1f} s")
        env = {**os.environ, **CREDS, "AWS_ENDPOINT_URL": endpoint}
        best, out = None, None
        for _ in range(a.reps):
            t = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "opensre", "sweep", "--aws", "--no-store", "--format", "json"],
                               capture_output=True, text=True, env=env, check=True)
            took = time.monotonic() - t
            best = took if best is None else min(best, took)
            out = json.loads(r.stdout)
        s = out["summary"]
        print(f"sweep --aws over {len(ids) + 3} instances: {best:.1f} s (best of {a.reps}); "
              f"{s['findings']} findings, ${s['total_monthly_cost_usd']:,.2f}/month; by kind "
              + ", ".join(f"{k} {v['count']}" for k, v in s["by_kind"].items()))
    finally:
        moto.terminate()
        moto.wait(timeout=10)


if __name__ == "__main__":
    main()
