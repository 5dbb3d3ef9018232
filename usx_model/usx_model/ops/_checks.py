"""Input validation shared by the point-cloud ops (messages say what was expected and what came)."""

from __future__ import annotations

import torch


def check_points(name: str, points: torch.Tensor, *, allow_empty: bool = False) -> None:
    """Raise ValueError unless ``points`` is a finite float tensor of shape (B, N, 3).

    Args:
        name: argument name used in the message.
        points: (B, N, 3) tensor.
        allow_empty: accept N == 0.
    """
    if not isinstance(points, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(points).__name__}")
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"{name}: expected (B, N, 3) float points, got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise ValueError(f"{name}: expected (B, N, 3) float points, got dtype {points.dtype}")
    if points.shape[1] == 0 and not allow_empty:
        raise ValueError(f"{name}: expected at least one point, got an empty cloud (N == 0)")
    if points.shape[0] == 0:
        raise ValueError(f"{name}: expected a batch of at least one cloud, got B == 0")
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"{name}: points contain NaN or Inf")


def check_same_batch(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    """Raise ValueError unless ``a`` and ``b`` share batch size and device."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b}: batch sizes differ ({a.shape[0]} vs {b.shape[0]})"
        )
    if a.device != b.device:
        raise ValueError(f"{name_a} and {name_b}: devices differ ({a.device} vs {b.device})")


def check_index(name: str, idx: torch.Tensor, ndim: int, upper: int) -> None:
    """Raise ValueError unless ``idx`` is an int tensor of ``ndim`` dims, 0 <= idx < upper."""
    if not isinstance(idx, torch.Tensor) or idx.dtype not in (torch.int64, torch.int32):
        raise ValueError(
            f"{name}: expected an int64 index tensor, got {getattr(idx, 'dtype', idx)}"
        )
    if idx.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dims, got shape {tuple(idx.shape)}")
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= upper):
        raise ValueError(
            f"{name}: indices must lie in [0, {upper}), got [{int(idx.min())}, {int(idx.max())}]"
        )
