"""Turn raw observation clouds (mm) into network inputs; shared by training and inference.

Order of operations (identical for the dataset and for ``complete``):
1. validate each cloud ((N, 3), finite, at least :data:`MIN_POINTS` points);
2. resample US to Np and X-ray to Nx points by farthest point sampling (start index 0,
   deterministic; clouds smaller than the target repeat their FPS order cyclically);
3. fit the :class:`~usx_model.network.normalise.Normaliser` on the resampled US cloud;
4. normalise US and X-ray (and, in training, GT) with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from usx_model.network.normalise import Canonicalise, Normaliser, fit_normaliser
from usx_model.ops.fps import farthest_point_sample

#: Fewest points accepted for a US or X-ray cloud.
MIN_POINTS = 16


@dataclass
class Observations:
    """Network inputs for B vertebrae.

    Attributes:
        partial: (B, Np, 3) float32 normalised US points.
        xray: (B, Nx, 3) float32 normalised X-ray points, or None.
        normalisers: one per vertebra.
    """

    partial: torch.Tensor
    xray: torch.Tensor | None
    normalisers: list[Normaliser]


def check_cloud(name: str, points: object, min_points: int = MIN_POINTS) -> np.ndarray:
    """(N, 3) finite float64 array with N >= min_points, else ValueError naming the problem."""
    arr = np.asarray(points)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3) float points, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name}: empty cloud (0 points)")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name}: expected float points, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: {int((~np.isfinite(arr)).any(1).sum())} points are NaN/Inf")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name}: expected at least {min_points} points, got {arr.shape[0]}")
    return arr


def resample(clouds: Sequence[np.ndarray], n_points: int) -> np.ndarray:
    """FPS every (N_i, 3) cloud to (n_points, 3) in one batched call → (B, n_points, 3).

    Translation-, rotation- and scale-invariant, so it can run in mm before normalising.
    """
    n_max = max(c.shape[0] for c in clouds)
    padded = np.zeros((len(clouds), n_max, 3))
    for i, c in enumerate(clouds):
        padded[i, : c.shape[0]] = c
    # Indices come from float32 (half the memory traffic of float64 in the FPS loop);
    # the points themselves are taken from the float64 input.
    pts = torch.from_numpy(padded.astype(np.float32))
    lengths = torch.tensor([c.shape[0] for c in clouds])
    idx = farthest_point_sample(pts, n_points, lengths).numpy()
    return np.take_along_axis(padded, idx[:, :, None], axis=1)


def prepare_observations(
    us_points_mm: Sequence[np.ndarray],
    xray_points_mm: Sequence[np.ndarray | None] | None,
    n_partial: int,
    n_xray: int,
    use_xray: bool,
    names: Sequence[str] | None = None,
    canonicalise: Canonicalise | str = Canonicalise.NONE,
    rotations: Sequence[np.ndarray] | None = None,
) -> Observations:
    """Validate, resample and normalise B observations.

    Args:
        us_points_mm: B clouds (N_i, 3) in mm.
        xray_points_mm: B clouds (M_i, 3) in mm (entries may be None when not used), or None.
        n_partial, n_xray: Np, Nx.
        use_xray: whether the model takes X-ray points (then each must be present).
        names: labels for messages (e.g. level names), default "vertebra i".
        canonicalise: see :func:`~usx_model.network.normalise.fit_normaliser`.
        rotations: B (3, 3) rotations for ``canonicalise='given'``.

    Raises:
        ValueError: any bad cloud, missing X-ray, length mismatch.
    """
    b = len(us_points_mm)
    if b == 0:
        raise ValueError("us_points_mm: expected at least one vertebra, got none")
    names = list(names) if names is not None else [f"vertebra {i}" for i in range(b)]
    if len(names) != b:
        raise ValueError(f"levels: expected {b} entries (one per vertebra), got {len(names)}")
    us = [check_cloud(f"{names[i]}: US cloud", c) for i, c in enumerate(us_points_mm)]
    xr = None
    if use_xray:
        if xray_points_mm is None or len(xray_points_mm) != b:
            got = "None" if xray_points_mm is None else f"{len(xray_points_mm)} entries"
            raise ValueError(f"xray_points_mm: the model needs {b} X-ray clouds, got {got}")
        for i, c in enumerate(xray_points_mm):
            if c is None:
                raise ValueError(f"{names[i]}: the model needs X-ray points, got None")
        xr = [check_cloud(f"{names[i]}: X-ray cloud", c) for i, c in enumerate(xray_points_mm)]
    if rotations is not None and len(rotations) != b:
        raise ValueError(f"rotations: expected {b} rotations, got {len(rotations)}")
    us_rs = resample(us, n_partial)
    norms = [
        fit_normaliser(us_rs[i], canonicalise, None if rotations is None else rotations[i])
        for i in range(b)
    ]
    partial = torch.from_numpy(
        np.stack([n.normalise(p) for n, p in zip(norms, us_rs, strict=True)])
    )
    xray = None
    if xr is not None:
        xr_rs = resample(xr, n_xray)
        xray = torch.from_numpy(
            np.stack([n.normalise(p) for n, p in zip(norms, xr_rs, strict=True)])
        )
    return Observations(partial, xray, norms)
