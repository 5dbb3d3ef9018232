"""Chamfer distances with memory-bounded nearest-neighbour search (replaces the CUDA Chamfer)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from usx_model.ops._checks import check_points, check_same_batch
from usx_model.ops.gather import index_points
from usx_model.ops.knn import knn_points

#: Squared distances are clamped to this before the square root (finite gradient at 0).
SQRT_EPS = 1e-12


class ChamferResult(NamedTuple):
    """Per-cloud Chamfer values and the nearest-neighbour distances behind them.

    Attributes:
        cd_p: (B,) ½(mean √d_xy + mean √d_yx), the paper's CD-L1-like "cd_p".
        cd_t: (B,) mean d_xy + mean d_yx, the paper's CD-L2 "cd_t" (no ½).
        dist_xy: (B, N) squared distance of each x point to its nearest y point.
        dist_yx: (B, M) squared distance of each y point to its nearest x point.
        idx_xy: (B, N) index of that nearest y point.
        idx_yx: (B, M) index of that nearest x point.
    """

    cd_p: torch.Tensor
    cd_t: torch.Tensor
    dist_xy: torch.Tensor
    dist_yx: torch.Tensor
    idx_xy: torch.Tensor
    idx_yx: torch.Tensor


def nearest_sq_dist(
    x: torch.Tensor, y: torch.Tensor, chunk_size: int = 2048
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact squared distance from each x point to its nearest y point, differentiable.

    The argmin is found without gradient in chunks (memory O(B * chunk_size * M));
    the distance is then recomputed from coordinate differences so that it is exact
    and its gradient reaches both x and y (autograd memory O(B * N)).

    Args:
        x: (B, N, 3), y: (B, M, 3).

    Returns:
        dist: (B, N) squared distances; idx: (B, N) int64 indices into y.
    """
    idx = knn_points(x, y, 1, chunk_size=chunk_size).idx[..., 0]
    dist = (x - index_points(y, idx)).square().sum(-1)
    return dist, idx


def chamfer_distance(x: torch.Tensor, y: torch.Tensor, chunk_size: int = 2048) -> ChamferResult:
    """Chamfer distances between batched clouds of possibly different sizes (N != M).

    Args:
        x: (B, N, 3) points, e.g. a prediction.
        y: (B, M, 3) points, e.g. the ground truth.
        chunk_size: rows per no-grad distance block.

    Returns:
        :class:`ChamferResult`; cd_p and cd_t are per cloud (B,), reduce them yourself.

    Raises:
        ValueError: bad shape, NaN/Inf, empty cloud, batch mismatch.
    """
    check_points("x", x)
    check_points("y", y)
    check_same_batch("x", x, "y", y)
    d_xy, i_xy = nearest_sq_dist(x, y, chunk_size)
    d_yx, i_yx = nearest_sq_dist(y, x, chunk_size)
    cd_p = 0.5 * (d_xy.clamp_min(SQRT_EPS).sqrt().mean(1) + d_yx.clamp_min(SQRT_EPS).sqrt().mean(1))
    cd_t = d_xy.mean(1) + d_yx.mean(1)
    return ChamferResult(cd_p, cd_t, d_xy, d_yx, i_xy, i_yx)
