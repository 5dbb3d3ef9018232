"""Earth mover's distance for evaluation: exact assignment by scipy (CPU, no gradient)."""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def _as_batch(name: str, a: np.ndarray | torch.Tensor) -> np.ndarray:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise ValueError(f"{name}: expected (N, 3) or (B, N, 3) points, got {arr.shape}")
    if arr.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one point, got an empty cloud")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: points contain NaN or Inf")
    return arr.astype(np.float64)


def earth_movers_distance(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> np.ndarray:
    """Mean Euclidean distance of the optimal one-to-one matching of two equal-size clouds.

    Exact (Hungarian / LSA), unlike the reference's auction approximation; O(n^3),
    about a second at n = 2048 on one core.

    Args:
        x: (N, 3) or (B, N, 3) points.
        y: same shape as x.

    Returns:
        (B,) float64 EMD per cloud (B = 1 for unbatched input), in the points' unit.

    Raises:
        ValueError: shape mismatch (EMD here needs equal sizes), NaN/Inf, empty cloud.
    """
    xb, yb = _as_batch("x", x), _as_batch("y", y)
    if xb.shape != yb.shape:
        raise ValueError(f"x and y: EMD needs clouds of equal size, got {xb.shape} and {yb.shape}")
    out = np.empty(xb.shape[0])
    for b in range(xb.shape[0]):
        cost = cdist(xb[b], yb[b])
        rows, cols = linear_sum_assignment(cost)
        out[b] = cost[rows, cols].mean()
    return out
