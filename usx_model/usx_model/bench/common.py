"""Shared helpers for benchmarks: timing with warm-up, medians and machine facts."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable


def time_runs(fn: Callable[[], object], runs: int, warmup: int = 1) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times; return seconds per run."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summarise(times_s: list[float]) -> dict:
    """Median, min, max and count of a list of durations in seconds."""
    return {
        "median_s": statistics.median(times_s),
        "min_s": min(times_s),
        "max_s": max(times_s),
        "runs": len(times_s),
    }


def machine_info() -> dict:
    """Facts about the machine a benchmark ran on."""
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # benchmarks that need no torch still report the rest
        pass
    return info
