"""The only package that touches libbpf."""

from .loader import BpfObject, Map, RingBuffer, object_path

__all__ = ["BpfObject", "Map", "RingBuffer", "object_path"]
