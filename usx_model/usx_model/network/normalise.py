"""Observation-based normalisation shared by training and inference.

A :class:`Normaliser` maps millimetre points in the input frame to the network frame:

    p_net = R · (p_mm − centre_mm) / scale_mm

- centre_mm: centroid of the US partial cloud (only the observation, never GT; the X-ray
  is left out so that every variant, the US-only baseline included, sees the same frame).
- scale_mm: extent of the US partial along the canonical x axis (lateral, between the
  transverse processes) + ``margin_mm`` (30 mm), the predecessor pipeline's rule, so that
  shapes fit in about ±0.5.
- R: rotation input → canonical frame, rows = canonical x (left), y (posterior, toward
  the probe), z (superior) expressed in the input frame. Three ways to get it
  (:class:`Canonicalise`): ``none`` (the input is already LPS-aligned, R = I), ``given``
  (the caller knows R, e.g. from the patient registration), ``pca`` (principal axes of
  the US partial: smallest variance → y, the surface normal of what the probe sees;
  largest → x; signs from ``probe_direction`` / ``superior_direction`` when known, else
  from the third moment: the spinous process makes the posterior tail, +y skew > 0).
  The PCA frame is only as stable as the eigenvalue gaps of the partial; prefer ``given``.
The training pipeline must use the same mode as inference.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import torch

#: Added to the US lateral extent to get the scale (predecessor pipeline: 30 mm).
MARGIN_MM = 30.0


class Canonicalise(enum.StrEnum):
    NONE = "none"
    GIVEN = "given"
    PCA = "pca"


@dataclass(frozen=True)
class Normaliser:
    """centre_mm (3,), scale_mm (mm per network unit) and rotation (3, 3) input → canonical."""

    centre_mm: np.ndarray
    scale_mm: float
    rotation: np.ndarray

    def normalise(self, points_mm: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """(..., 3) mm points in the input frame → network frame (same type as the input)."""
        return normalise(points_mm, self)

    def denormalise(self, points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """(..., 3) network-frame points → mm in the input frame (same type as the input)."""
        return denormalise(points, self)


def _as_points(name: str, points: np.ndarray, min_points: int = 1) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3) float points, got {arr.shape}")
    if arr.shape[0] < min_points:
        raise ValueError(f"{name}: expected at least {min_points} points, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: points contain NaN or Inf")
    return arr


def _unit(name: str, v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-9:
        raise ValueError(f"{name}: expected a non-zero 3-vector, got {v}")
    return v / np.linalg.norm(v)


def _sign(axis: np.ndarray, centred: np.ndarray, hint: np.ndarray | None) -> float:
    if hint is not None:
        return 1.0 if float(axis @ hint) >= 0 else -1.0
    return 1.0 if float(np.mean((centred @ axis) ** 3)) >= 0 else -1.0


def canonical_rotation(
    us_points_mm: np.ndarray,
    probe_direction: np.ndarray | None = None,
    superior_direction: np.ndarray | None = None,
) -> np.ndarray:
    """PCA rotation (3, 3), rows = canonical x, y, z axes in the input frame (det = +1).

    Args:
        us_points_mm: (N, 3) US partial, N >= 3.
        probe_direction: optional vector toward the probe (posterior) in the input frame.
        superior_direction: optional vector toward the head in the input frame.
    """
    pts = _as_points("us_points_mm", us_points_mm, 3)
    centred = pts - pts.mean(0)
    _, vecs = np.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
    y, z = vecs[:, 0], vecs[:, 1]
    probe = None if probe_direction is None else _unit("probe_direction", probe_direction)
    sup = None if superior_direction is None else _unit("superior_direction", superior_direction)
    y = y * _sign(y, centred, probe)
    z = z * _sign(z, centred, sup)
    x = np.cross(y, z)  # right-handed: x × y = z (LPS)
    return np.stack([x, y, z])


def fit_normaliser(
    us_points_mm: np.ndarray,
    canonicalise: Canonicalise | str = Canonicalise.NONE,
    rotation: np.ndarray | None = None,
    probe_direction: np.ndarray | None = None,
    superior_direction: np.ndarray | None = None,
    margin_mm: float = MARGIN_MM,
) -> Normaliser:
    """Normaliser from the US partial alone (see the module docstring).

    Args:
        us_points_mm: (N, 3) US partial in mm, input frame.
        canonicalise: ``none`` | ``given`` | ``pca``.
        rotation: (3, 3) input → canonical rotation, required for ``given``.
        probe_direction, superior_direction: sign hints for ``pca``.
        margin_mm: added to the lateral extent.

    Raises:
        ValueError: bad points, bad or missing rotation.
    """
    pts = _as_points("us_points_mm", us_points_mm)
    mode = Canonicalise(canonicalise)
    if mode is Canonicalise.NONE:
        rot = np.eye(3)
    elif mode is Canonicalise.GIVEN:
        if rotation is None:
            raise ValueError("rotation: canonicalise='given' needs a (3, 3) rotation")
        rot = np.asarray(rotation, dtype=np.float64)
        if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6):
            raise ValueError(f"rotation: expected a (3, 3) orthonormal matrix, got {rot.shape}")
        if np.linalg.det(rot) < 0:
            raise ValueError("rotation: expected det = +1, got a reflection")
    else:
        rot = canonical_rotation(pts, probe_direction, superior_direction)
    centre = pts.mean(0)
    lateral = (pts - centre) @ rot[0]
    scale = float(lateral.max() - lateral.min()) + float(margin_mm)
    if scale <= 0:
        raise ValueError(f"margin_mm: scale must be > 0, got {scale}")
    return Normaliser(centre_mm=centre, scale_mm=scale, rotation=rot)


def normalise(points_mm: np.ndarray | torch.Tensor, norm: Normaliser) -> np.ndarray | torch.Tensor:
    """p_net = R (p − c) / s for (..., 3) points.

    numpy in → float32 numpy out; a tensor keeps its dtype and device.
    """
    if isinstance(points_mm, torch.Tensor):
        c = torch.as_tensor(norm.centre_mm, dtype=points_mm.dtype, device=points_mm.device)
        r = torch.as_tensor(norm.rotation, dtype=points_mm.dtype, device=points_mm.device)
        return (points_mm - c) @ r.T / norm.scale_mm
    p = np.asarray(points_mm, dtype=np.float64)
    return (((p - norm.centre_mm) @ norm.rotation.T) / norm.scale_mm).astype(np.float32)


def denormalise(points: np.ndarray | torch.Tensor, norm: Normaliser) -> np.ndarray | torch.Tensor:
    """Inverse of :func:`normalise`: p_mm = Rᵀ (s p) + c; numpy out is float64."""
    if isinstance(points, torch.Tensor):
        c = torch.as_tensor(norm.centre_mm, dtype=points.dtype, device=points.device)
        r = torch.as_tensor(norm.rotation, dtype=points.dtype, device=points.device)
        return (points * norm.scale_mm) @ r + c
    p = np.asarray(points, dtype=np.float64)
    return (p * norm.scale_mm) @ norm.rotation + norm.centre_mm
