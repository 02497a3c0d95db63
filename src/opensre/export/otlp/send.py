"""Sending OTLP/HTTP protobuf requests: bounded retries with backoff on connection
errors, 429 and 5xx; the receiver's partial success counted; one clear line when it
fails."""

from __future__ import annotations

import gzip
import http.client
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request

from ...errors import ExportError
from .attrs import proto, version
from .endpoint import Endpoint, Target, shown
from .telemetry import ExportSummary


# -- sending ------------------------------------------------------------------------
def send(target: Target, message, endpoint: Endpoint, summary: ExportSummary | None = None,
         sleep=time.sleep) -> None:
    """POST one request message to `target`; retried on connection errors, timeouts,
    429 and 5xx (endpoint.tries attempts, exponential backoff), never on another 4xx.
    ExportError when it was not delivered; a partial success is added to `summary`."""
    body = message.SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "User-Agent": f"opensre/{version()}", **target.headers}
    if target.gzip:
        body = gzip.compress(body, 6)
        headers["Content-Encoding"] = "gzip"
    ctx = ssl.create_default_context(cafile=target.cafile) if target.url.startswith("https:") else None
    why = ""
    for attempt in range(max(1, endpoint.tries)):
        if attempt:
            sleep(endpoint.backoff_s * 2 ** (attempt - 1))
        req = urllib.request.Request(target.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=target.timeout_s, context=ctx) as resp:
                reply = resp.read()
        except urllib.error.HTTPError as e:
            why = f"HTTP {e.code} {e.reason}{_body_hint(e)}"
            if e.code == 429 or e.code >= 500:
                continue
            raise ExportError(f"OTLP endpoint {shown(target.url)} refused the export: {why}",
                              "check the endpoint, its path and OTEL_EXPORTER_OTLP_HEADERS; the store is unchanged")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            why = _reason(e)
            continue
        if summary is not None:
            summary.requests += 1
            summary.bytes += len(body)
            _partial(message, reply, summary)
        return
    raise ExportError(f"OTLP export to {shown(target.url)} failed after {endpoint.tries} tries: {why}",
                      "the store is unchanged: run the same export again when the endpoint is up")


def _partial(message, reply: bytes, summary: ExportSummary) -> None:
    pb = proto()
    traces = isinstance(message, pb.ts.ExportTraceServiceRequest)
    resp = (pb.ts.ExportTraceServiceResponse if traces else pb.ms.ExportMetricsServiceResponse)()
    try:
        resp.ParseFromString(reply)
    except Exception:  # a receiver that answers text ("OK") or JSON: nothing partial said
        return
    ps = resp.partial_success
    n = ps.rejected_spans if traces else ps.rejected_data_points
    if traces:
        summary.rejected_spans += n
    else:
        summary.rejected_points += n
    if n or ps.error_message:
        summary.messages.append(f"{n} {'spans' if traces else 'points'} rejected"
                                + (f": {ps.error_message}" if ps.error_message else ""))


def _reason(e: BaseException) -> str:
    r = getattr(e, "reason", None) or e
    if isinstance(r, ConnectionRefusedError):
        return "connection refused"
    if isinstance(r, TimeoutError):
        return "timed out"
    text = getattr(r, "strerror", None) or str(r) or type(r).__name__
    return " ".join(str(text).split())


def _body_hint(e: urllib.error.HTTPError) -> str:
    try:
        text = e.read(300).decode("utf-8")
    except Exception:
        return ""
    text = " ".join(text.split())
    return f" ({text[:200]})" if text and text.isprintable() else ""


