"""Farthest point sampling (replaces mmcv ``furthest_point_sample``): a Numba-compiled loop
on the CPU, torch ops elsewhere, the same indices either way."""

from __future__ import annotations

import functools

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
            picked = _fps_compiled(points.detach(), lengths, steps)
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


def _fps_compiled(points: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """The loop of :func:`_fps_torch` compiled by Numba, for CPU tensors.

    Same arithmetic in the same order (x, y, z squared differences added left to right
    in the points' dtype, no fused multiply-add; the first of equal maxima wins), so the
    indices are identical to the torch loop's (tested). Interpreted, the loop paid a
    dispatch per step and operation (2,458 steps for five vertebrae); compiled, what is
    left is the n x steps distance updates (``usx bench completion``, docs/results.md).
    """
    pts = np.ascontiguousarray(points.numpy().transpose(0, 2, 1))  # (B, 3, N)
    out = np.empty((pts.shape[0], steps), dtype=np.int64)
    _kernel()(pts, lengths.numpy().astype(np.int64), steps, out)
    return torch.from_numpy(out)


#: Lanes of the compiled argmax: each lane keeps its own running maximum over every
#: LANES-th point, which the compiler turns into vector compares and blends.
LANES = 16


@functools.cache
def _kernel():
    """The compiled loop, built (or loaded from Numba's cache) on first use: importing
    Numba costs about a third of a second, which node start-up should not pay."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def fps_loop(pts, lengths, steps, out):  # pragma: no cover - compiled
        b, n = pts.shape[0], pts.shape[2]
        full = n - n % LANES
        dist = np.empty(n, dtype=pts.dtype)
        best = np.empty(LANES, dtype=pts.dtype)
        arg = np.empty(LANES, dtype=np.int64)
        for i in range(b):
            x, y, z = pts[i, 0], pts[i, 1], pts[i, 2]
            for j in range(n):
                dist[j] = np.inf if j < lengths[i] else -np.inf
            last = 0
            for s in range(steps):
                out[i, s] = last
                dist[last] = -np.inf
                if s + 1 == steps:
                    break
                cx, cy, cz = x[last], y[last], z[last]
                best[:] = -np.inf
                arg[:] = 0
                for j0 in range(0, full, LANES):
                    for lane in range(LANES):
                        j = j0 + lane
                        dx, dy, dz = x[j] - cx, y[j] - cy, z[j] - cz
                        d = dx * dx + dy * dy + dz * dz
                        d = d if d < dist[j] else dist[j]
                        dist[j] = d
                        up = d > best[lane]
                        best[lane] = d if up else best[lane]
                        arg[lane] = j if up else arg[lane]
                top, last = -np.inf, 0
                for lane in range(LANES):
                    if best[lane] > top or (best[lane] == top and arg[lane] < last):
                        top, last = best[lane], arg[lane]
                for j in range(full, n):
                    dx, dy, dz = x[j] - cx, y[j] - cy, z[j] - cz
                    d = dx * dx + dy * dy + dz * dz
                    d = d if d < dist[j] else dist[j]
                    dist[j] = d
                    if d > top:
                        top, last = d, j
                # All points taken (a cloud shorter than ``steps``): index 0, as argmax
                # over all -inf gives.
                last = last if top > -np.inf else 0

    return fps_loop
