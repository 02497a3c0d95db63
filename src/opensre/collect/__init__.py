"""Collection: kernel events -> process records -> store."""

from .collector import DEFAULT_DENYLIST, Collector, CollectorOptions
from .runner import RunResult, run_command

__all__ = ["Collector", "CollectorOptions", "DEFAULT_DENYLIST", "RunResult", "run_command"]
