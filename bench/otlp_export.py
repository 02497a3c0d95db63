"""Throughput of the OTLP export: a stored, correlated run of N processes (default
100,000; the Snakemake-shaped run of report_scale.py, with its per-process time series
and OOM kills) built into OTLP messages and sent to a loopback OTLP/HTTP receiver
(http.server on 127.0.0.1 that reads each body, as tests/otlp_sink.py does, without
decoding it, so the receiver's own parsing is not timed).

Timed: reading the run from the store, building the trace and metrics requests, and
sending them (in-process, the library's export_run), uncompressed and with gzip
(OTEL_EXPORTER_OTLP_COMPRESSION=gzip); then uncompressed once more through the CLI as
a fresh process. Printed: processes/s, spans, metric points, requests, MB.
Not a test: no target, a number for docs/otlp.md.

usage: python bench/otlp_export.py [--processes N] [--store PATH]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from report_scale import build  # noqa: E402
from opensre.export.otlp import endpoint_from_env, export_run  # noqa: E402
from opensre.store import Store  # noqa: E402


class Sink(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.rfile.read(n)
        Sink.received += n
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--processes", type=int, default=100_000)
    ap.add_argument("--store", help="reuse (or create) this store")
    a = ap.parse_args()
    path = a.store or os.path.join(tempfile.mkdtemp(), "otlp-scale.sqlite")
    if not os.path.exists(path):
        t = time.perf_counter()
        ns = build(path, a.processes)
        print(f"built a run of {a.processes:,} processes and {ns:,} samples in {time.perf_counter() - t:.1f} s")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"

    store = Store(path, readonly=True)
    run = store.resolve_run("scale")
    for compression in ("none", "gzip"):
        t = time.perf_counter()
        s = export_run(store, run, endpoint_from_env(url, {"OTEL_EXPORTER_OTLP_COMPRESSION": compression}))
        dt = time.perf_counter() - t
        print(f"library, compression {compression}: {run.process_count:,} processes -> {s.spans:,} spans, "
              f"{s.metric_points:,} metric points, {s.requests} requests, {s.bytes / 1e6:.1f} MB in {dt:.1f} s: "
              f"{run.process_count / dt:,.0f} processes/s, {s.spans / dt:,.0f} spans/s")
    store.close()

    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "opensre", "export", "--store", path, "--run", "scale", "--format",
                        "otlp", "--endpoint", url], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    dt = time.perf_counter() - t
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        return 1
    print(f"CLI (fresh process): {dt:.1f} s, {run.process_count / dt:,.0f} processes/s; {r.stdout.strip()}")
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
