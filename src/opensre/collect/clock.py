"""Kernel events carry CLOCK_BOOTTIME; the store speaks ns since the epoch."""

from __future__ import annotations

import time


def boot_to_epoch_offset() -> int:
    """realtime - boottime, read back to back (median of 5 to dodge preemption)."""
    samples = []
    for _ in range(5):
        b0 = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        r = time.time_ns()
        b1 = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        samples.append((b1 - b0, r - (b0 + b1) // 2))
    samples.sort()
    return samples[0][1]
