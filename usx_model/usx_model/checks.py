"""Validation of numpy point clouds at module boundaries, shared by the core packages.

Messages say what was expected and what arrived; callers pin them in their tests.
"""

from __future__ import annotations

import numpy as np


def check_points(points: np.ndarray, name: str, min_count: int = 0) -> np.ndarray:
    """Return ``points`` as an (N, 3) float64 array, or raise ValueError.

    Args:
        points: array-like of (N, 3) points.
        name: what the caller calls it, used in the message.
        min_count: fewest points accepted.

    Raises:
        ValueError: wrong shape, fewer than ``min_count`` points, or NaN/Inf.
    """
    p = np.asarray(points)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"expected {name} as (N, 3) float points, got {p.shape}")
    if len(p) < min_count:
        raise ValueError(f"{name} needs at least {min_count} points, got {len(p)}")
    p = p.astype(np.float64)  # a copy: callers may modify it
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains non-finite values")
    return p
