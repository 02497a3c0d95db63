from .events import decode, split_argv

__all__ = ["decode", "split_argv"]
