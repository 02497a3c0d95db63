"""Where an OTLP export goes: the endpoint from --endpoint or the standard
OTEL_EXPORTER_OTLP_* environment, per signal (traces, metrics), with its headers."""

from __future__ import annotations

import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Mapping

from ...errors import UsageError


DEFAULT_ENDPOINT = "http://localhost:4318"


# -- where to send ------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    url: str
    headers: Mapping[str, str]
    timeout_s: float = 10.0
    gzip: bool = False
    cafile: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """Where traces and metrics go, as the OTel exporter environment configures it."""

    traces: Target
    metrics: Target
    tries: int = 3          # attempts per request, for connection errors, timeouts, 429 and 5xx
    backoff_s: float = 0.5  # wait before the 2nd attempt; doubled before each further one

    def __str__(self) -> str:
        """For messages: the base URL both signals share, else both URLs; never credentials."""
        t, m = shown(self.traces.url), shown(self.metrics.url)
        if t.endswith("/v1/traces") and m == t[: -len("traces")] + "metrics":
            return t[: -len("/v1/traces")]
        return f"{t} and {m}"


def endpoint_from_env(url: str | None = None, env: Mapping[str, str] | None = None) -> Endpoint:
    """The OTLP/HTTP endpoint from `url` (a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT:
    /v1/traces and /v1/metrics are appended) or else the standard environment:
    OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT (used as they are), then
    OTEL_EXPORTER_OTLP_ENDPOINT, then http://localhost:4318; _HEADERS, _TIMEOUT (ms),
    _COMPRESSION (gzip) and _CERTIFICATE, signal-specific before generic."""
    env = os.environ if env is None else env
    return Endpoint(_target("traces", url, env), _target("metrics", url, env))


def _target(signal: str, url: str | None, env: Mapping[str, str]) -> Target:
    sig = signal.upper()

    def get(key: str) -> str | None:
        v = env.get(f"OTEL_EXPORTER_OTLP_{sig}_{key}") or env.get(f"OTEL_EXPORTER_OTLP_{key}")
        return v.strip() if v and v.strip() else None

    protocol = get("PROTOCOL")
    if protocol and protocol != "http/protobuf":
        raise UsageError(f"OTEL_EXPORTER_OTLP_PROTOCOL is {protocol!r}: opensre sends OTLP as http/protobuf only",
                         "unset it or set it to http/protobuf, and point the endpoint at the HTTP port (4318)")
    if url:
        full = _append(url, signal)
    elif env.get(f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT", "").strip():
        full = env[f"OTEL_EXPORTER_OTLP_{sig}_ENDPOINT"].strip()
    else:
        full = _append(env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_ENDPOINT, signal)
    u = urllib.parse.urlsplit(full)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise UsageError(f"not an http(s) URL for OTLP {signal}: {shown(full)!r}",
                         "give e.g. --endpoint http://collector:4318")
    timeout = get("TIMEOUT")
    try:
        timeout_s = float(timeout) / 1000 if timeout else 10.0
    except ValueError:
        raise UsageError(f"OTEL_EXPORTER_OTLP_TIMEOUT is not a number of milliseconds: {timeout!r}") from None
    compression = get("COMPRESSION")
    if compression not in (None, "none", "gzip"):
        raise UsageError(f"OTEL_EXPORTER_OTLP_COMPRESSION {compression!r} is not supported", "use gzip or none")
    return Target(full, _headers(get("HEADERS")), timeout_s, compression == "gzip", get("CERTIFICATE"))


def _append(base: str, signal: str) -> str:
    return base.rstrip("/") + f"/v1/{signal}"


def _headers(text: str | None) -> dict[str, str]:
    """W3C-baggage-like `k1=v1,k2=v2`, values percent-decoded (the OTel spec's format)."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise UsageError("OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs separated by commas")
        out[urllib.parse.unquote(k.strip())] = urllib.parse.unquote(v.strip())
    return out


def shown(url: str) -> str:
    """A URL for a message: without user:password@."""
    u = urllib.parse.urlsplit(url)
    if u.username or u.password:
        u = u._replace(netloc=u.hostname + (f":{u.port}" if u.port else ""))
    return urllib.parse.urlunsplit(u)

