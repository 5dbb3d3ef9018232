"""Farthest point sampling (replaces mmcv ``furthest_point_sample``): NumPy on the CPU,
torch ops elsewhere, the same indices either way."""

from __future__ import annotations

import numpy as np
import torch

from usx_model.ops._checks import check_points


def farthest_point_sample(
    points: torch.Tensor, n_samples: int, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Iterative farthest point sampling, starting at index 0; no gradient.

    Each step picks the not-yet-selected point whose squared distance to the selected
    set is largest (ties: lowest index). A point is never picked twice, so duplicate
    points are still all picked before any repetition.

    Rule for ``n_samples > n`` (n = number of valid points of a cloud): the first n
    indices are the full FPS order (a permutation of the cloud) and the sequence then
    repeats cyclically, ``idx[j] = idx[j % n]``. Unlike mmcv (which pads with index 0)
    every point is then used about equally often.

    Args:
        points: (B, N, 3) float points.
        n_samples: M, number of indices per cloud (>= 1).
        lengths: optional (B,) int number of valid points per cloud (1 <= n_b <= N);
            points at positions >= n_b are padding and never selected. Lets ragged
            clouds be sampled in one batched call.

    Returns:
        (B, M) int64 indices into dimension 1 of ``points``.

    Raises:
        ValueError: bad shape, NaN/Inf, empty cloud, n_samples < 1, bad lengths.
    """
    check_points("points", points)
    if int(n_samples) < 1:
        raise ValueError(f"n_samples: expected >= 1, got {n_samples}")
    b, n, _ = points.shape
    device = points.device
    if lengths is None:
        lengths = torch.full((b,), n, dtype=torch.long, device=device)
    else:
        if lengths.shape != (b,):
            raise ValueError(f"lengths: expected shape ({b},), got {tuple(lengths.shape)}")
        lengths = lengths.to(device=device, dtype=torch.long)
        if int(lengths.min()) < 1 or int(lengths.max()) > n:
            raise ValueError(f"lengths: expected values in [1, {n}], got {lengths.tolist()}")
    m = int(n_samples)
    steps = min(m, int(lengths.max()))
    with torch.no_grad():
        if device.type == "cpu":
            picked = _fps_numpy(points.detach(), lengths, steps)
        else:
            picked = _fps_torch(points.detach(), lengths, steps)
        if steps == m and bool((lengths >= m).all()):
            return picked
        # Cyclic rule for clouds with fewer valid points than requested.
        cols = torch.arange(m, device=device)[None, :] % torch.clamp(lengths, max=steps)[:, None]
        return torch.gather(picked, 1, cols)


def _fps_torch(points: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps) FPS order, torch ops on the points' device (the loop for accelerators)."""
    b, n, _ = points.shape
    device = points.device
    # Channel-major copy: the per-step distance update then runs on contiguous rows.
    pts_cm = points.transpose(1, 2).contiguous()
    valid = torch.arange(n, device=device)[None, :] < lengths[:, None]
    # +inf: not yet reached by any selected point; -inf: selected or padding.
    dist = torch.full((b, n), float("inf"), dtype=points.dtype, device=device)
    dist.masked_fill_(~valid, float("-inf"))
    last = torch.zeros((b, 1), dtype=torch.long, device=device)
    centre_idx = last[:, :, None].expand(b, 3, 1)
    chosen = []
    for i in range(steps):
        chosen.append(last)
        dist.scatter_(1, last, float("-inf"))
        if i + 1 == steps:
            break
        centre = torch.gather(pts_cm, 2, centre_idx)  # (B, 3, 1)
        torch.minimum(dist, (pts_cm - centre).square_().sum(1), out=dist)
        last = dist.argmax(dim=1, keepdim=True)
        centre_idx = last[:, :, None].expand(b, 3, 1)
    return torch.cat(chosen, dim=1)


def _fps_numpy(points: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """The same loop as :func:`_fps_torch` in NumPy, for CPU tensors.

    Each of the ``steps`` iterations is a handful of small operations, so the per-call
    overhead dominates; NumPy's is lower than torch's dispatcher (``usx bench completion``
    ratio in docs/results.md). Same arithmetic in the same order (x, y, z squared
    differences added left to right; argmax takes the lowest index on ties), so the
    indices are identical (tested against the torch loop).
    """
    pts = np.ascontiguousarray(points.numpy().transpose(0, 2, 1))  # (B, 3, N)
    b, _, n = pts.shape
    rows = np.arange(b)
    dist = np.full((b, n), np.inf, dtype=pts.dtype)
    dist[np.arange(n)[None, :] >= lengths.numpy()[:, None]] = -np.inf
    diff = np.empty_like(pts)
    out = np.empty((b, steps), dtype=np.int64)
    last = np.zeros(b, dtype=np.int64)
    for i in range(steps):
        out[:, i] = last
        dist[rows, last] = -np.inf
        if i + 1 == steps:
            break
        np.subtract(pts, pts[rows, :, last][:, :, None], out=diff)
        np.square(diff, out=diff)
        np.minimum(dist, diff[:, 0] + diff[:, 1] + diff[:, 2], out=dist)
        last = dist.argmax(axis=1)
    return torch.from_numpy(out)
