"""OpenSRE: execution observability for scientific and ML workloads, from the kernel.

The library is usable without the CLI: `opensre.collect.Collector` observes, `opensre.store.Store`
reads what was observed. See README.md and docs/.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
