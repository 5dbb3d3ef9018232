"""Gathering and grouping of per-point features by index (replaces mmcv gather/grouping ops)."""

from __future__ import annotations

import torch

from usx_model.ops._checks import check_index


def _check_features(features: torch.Tensor) -> None:
    if not isinstance(features, torch.Tensor) or features.ndim != 3:
        raise ValueError(
            f"features: expected (B, C, N) tensor, got {tuple(getattr(features, 'shape', ()))}"
        )


def gather_points(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Pick columns of a channel-major feature tensor; autograd scatters back.

    Args:
        features: (B, C, N) features.
        idx: (B, M) int64 indices into N.

    Returns:
        (B, C, M) with ``out[b, :, m] = features[b, :, idx[b, m]]``.
    """
    _check_features(features)
    check_index("idx", idx, 2, features.shape[2])
    b, c, _ = features.shape
    return torch.gather(features, 2, idx[:, None, :].expand(b, c, idx.shape[1]))


def group_points(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather K neighbours' features for every centre.

    Args:
        features: (B, C, N) features.
        idx: (B, M, K) int64 neighbour indices into N.

    Returns:
        (B, C, M, K) with ``out[b, :, m, k] = features[b, :, idx[b, m, k]]``.
    """
    _check_features(features)
    check_index("idx", idx, 3, features.shape[2])
    b, c, _ = features.shape
    _, m, k = idx.shape
    flat = idx.reshape(b, 1, m * k).expand(b, c, m * k)
    return torch.gather(features, 2, flat).view(b, c, m, k)


def index_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gather rows of a point-major tensor (the (B, N, D) layout of xyz clouds).

    Args:
        points: (B, N, D) values.
        idx: (B, *S) int64 indices into N (any trailing shape S).

    Returns:
        (B, *S, D).
    """
    if not isinstance(points, torch.Tensor) or points.ndim != 3:
        raise ValueError(
            f"points: expected (B, N, D) tensor, got {tuple(getattr(points, 'shape', ()))}"
        )
    check_index("idx", idx, idx.ndim, points.shape[1])
    b, n, d = points.shape
    # index_select on the flattened batch is several times faster than gather with an
    # expanded index on CPU; the backward is an index_add.
    offset = torch.arange(b, device=idx.device).view(b, *([1] * (idx.ndim - 1))) * n
    flat = (idx + offset).reshape(-1)
    out = torch.index_select(points.reshape(b * n, d), 0, flat)
    return out.view(*idx.shape, d)
