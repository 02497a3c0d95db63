"""boto3 clients that can only read. Every client sweep makes comes from one botocore
session with a `before-call` handler that refuses any operation whose name does not
start with Describe, Get or List, before a request is signed or sent: sweep cannot
change an account even through a bug of ours. Credentials, region and endpoint come
from the standard AWS environment (AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_REGION,
AWS_ENDPOINT_URL, ...), as for the AWS CLI."""

from __future__ import annotations

from ...errors import ReadOnlyViolation, UsageError

READ_PREFIXES = ("Describe", "Get", "List")


def refuse_writes(model=None, **_) -> None:
    """botocore `before-call` handler: raise unless the operation only reads."""
    name = getattr(model, "name", "")
    if not name.startswith(READ_PREFIXES):
        raise ReadOnlyViolation(f"refused AWS operation {name or '?'}: sweep only calls Describe/Get/List")


class ReadOnlyAWS:
    """Clients per (service, region), all guarded by `refuse_writes`."""

    def __init__(self, regions: list[str] | None = None):
        try:
            import boto3
            import botocore.session
            from botocore.config import Config
        except ImportError:
            raise UsageError("sweep --aws needs boto3", "pip install 'opensre[aws]'") from None
        core = botocore.session.Session()
        core.register("before-call", refuse_writes)
        self.session = boto3.Session(botocore_session=core)
        self.regions = list(regions or [])
        if not self.regions:
            if not self.session.region_name:
                raise UsageError("no AWS region", "give --region R or set AWS_REGION / AWS_DEFAULT_REGION")
            self.regions = [self.session.region_name]
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30,
                              max_pool_connections=16)
        self._clients: dict[tuple[str, str], object] = {}

    def client(self, service: str, region: str):
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.session.client(service, region_name=region, config=self._config)
        return self._clients[key]


def service_error(service: str, region: str, e: Exception) -> str:
    """One line for a service that could not be read: what AWS (or the network) said."""
    code = getattr(e, "response", {}).get("Error", {}).get("Code") if hasattr(e, "response") else None
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    hint = ""
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        hint = " (grant the read-only policy in docs/sweep.md)"
    elif type(e).__name__ in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError"):
        hint = " (endpoint unreachable: check AWS_ENDPOINT_URL / network)"
    elif type(e).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        hint = " (set AWS credentials: AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)"
    return f"{service} {region}: {msg}{hint}"


def aws_errors() -> tuple[type[Exception], ...]:
    """What a service call may raise that means 'this service could not be read'."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)
