"""A real OTLP/HTTP receiver for tests: http.server on 127.0.0.1, each POST to
/v1/traces or /v1/metrics decoded with the official opentelemetry-proto messages,
answered as a collector answers (a protobuf Export*ServiceResponse, with a partial
success of `reject` items when asked), or with a chosen HTTP status for the first
`fail` requests."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (ExportMetricsServiceRequest,
                                                                          ExportMetricsServiceResponse)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                      ExportTraceServiceResponse)

MESSAGES = {"/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
            "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse)}


class OtlpSink:
    """with OtlpSink() as sink: ... sink.url, sink.hits, sink.bodies, sink.spans(), sink.metrics()."""

    def __init__(self, status: int = 200, fail: int = 0, reject: int = 0):
        self.status, self.fail, self.reject = status, fail, reject
        self.hits = 0                            # every POST, answered or failed
        self.bodies: list[tuple[str, bytes]] = []  # (path, raw body as received) of the accepted ones
        self.headers: list[dict] = []             # their headers, names in lower case
        self.requests: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with sink._lock:
                    sink.hits += 1
                    failing = sink.hits <= sink.fail
                if failing or self.path not in MESSAGES:
                    self.send_response(sink.status if failing else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                req_cls, resp_cls = MESSAGES[self.path]
                msg = req_cls()
                msg.ParseFromString(body)
                with sink._lock:
                    sink.bodies.append((self.path, raw))
                    sink.headers.append({k.lower(): v for k, v in self.headers.items()})
                    sink.requests.append((self.path, msg))
                resp = resp_cls()
                if sink.reject:
                    ps = resp.partial_success
                    setattr(ps, "rejected_spans" if self.path == "/v1/traces" else "rejected_data_points", sink.reject)
                    ps.error_message = "too old"
                out = resp.SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "OtlpSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def payload(self) -> bytes:
        """Every accepted body, decompressed, concatenated."""
        return b"".join(gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b for _, b in self.bodies)

    def resource_spans(self) -> list:
        return [rs for path, m in self.requests if path == "/v1/traces" for rs in m.resource_spans]

    def spans(self) -> list:
        return [s for rs in self.resource_spans() for ss in rs.scope_spans for s in ss.spans]

    def resource_metrics(self) -> list:
        return [rm for path, m in self.requests if path == "/v1/metrics" for rm in m.resource_metrics]

    def metrics(self) -> dict[str, list]:
        """metric name -> every data point of it, across requests."""
        out: dict[str, list] = {}
        for rm in self.resource_metrics():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    data = getattr(m, m.WhichOneof("data"))
                    out.setdefault(m.name, []).extend(data.data_points)
        return out


def attrs(kvs) -> dict:
    """OTLP KeyValues as a dict of Python values."""
    out = {}
    for kv in kvs:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [getattr(x, x.WhichOneof("value")) for x in v.array_value.values]
        else:
            out[kv.key] = getattr(v, kind)
    return out
