"""Three-nearest-neighbour inverse-distance interpolation (mmcv three_nn/three_interpolate)."""

from __future__ import annotations

import torch

from usx_model.ops._checks import check_index, check_points, check_same_batch
from usx_model.ops.knn import knn_points

#: Distances are clamped to this before inversion (mmcv uses the same guard).
MIN_DISTANCE = 1e-10


def three_nn(target: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The three nearest ``source`` points of every ``target`` point; no gradient.

    Args:
        target: (B, n, 3) points that receive values.
        source: (B, m, 3) points that carry values, m >= 3.

    Returns:
        dist: (B, n, 3) Euclidean distances (not squared, as mmcv), ascending.
        idx: (B, n, 3) int64 indices into source.
    """
    check_points("target", target)
    check_points("source", source)
    check_same_batch("target", target, "source", source)
    if source.shape[1] < 3:
        raise ValueError(f"source: expected at least 3 points, got {source.shape[1]}")
    dist2, idx = knn_points(target, source, 3)
    return dist2.sqrt(), idx


def three_weights(dist: torch.Tensor) -> torch.Tensor:
    """Normalised inverse-distance weights (1/d_i) / sum_j (1/d_j); no gradient.

    Args:
        dist: (B, n, 3) Euclidean distances from :func:`three_nn`.

    Returns:
        (B, n, 3) weights summing to 1 along the last axis.
    """
    with torch.no_grad():
        inv = 1.0 / dist.clamp_min(MIN_DISTANCE)
        return inv / inv.sum(-1, keepdim=True)


def three_interpolate(
    features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor
) -> torch.Tensor:
    """Weighted sum of three source features per target; gradient flows to ``features`` only.

    Args:
        features: (B, C, m) source features.
        idx: (B, n, 3) int64 indices into m.
        weight: (B, n, 3) weights (treated as constants, as the mmcv backward does).

    Returns:
        (B, C, n) interpolated features.
    """
    if features.ndim != 3:
        raise ValueError(f"features: expected (B, C, m), got {tuple(features.shape)}")
    check_index("idx", idx, 3, features.shape[2])
    if weight.shape != idx.shape:
        raise ValueError(
            f"weight: expected shape {tuple(idx.shape)} like idx, got {tuple(weight.shape)}"
        )
    b, c, _ = features.shape
    n = idx.shape[1]
    flat = idx.reshape(b, 1, n * 3).expand(b, c, n * 3)
    grouped = torch.gather(features, 2, flat).view(b, c, n, 3)
    return (grouped * weight.detach()[:, None, :, :]).sum(-1)
