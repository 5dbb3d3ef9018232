"""Input validation shared by the simulators (messages say what was expected and what arrived)."""

from __future__ import annotations

import numpy as np

from usx_model.sim.phantom.types import Spine


def check_spine(spine: Spine) -> None:
    """Raise ValueError unless ``spine`` holds at least one well-formed, non-empty mesh."""
    if not isinstance(spine, Spine):
        raise ValueError(f"expected a Spine, got {type(spine).__name__}")
    if not spine.vertebrae:
        raise ValueError(f"spine {spine.spine_id!r} has no vertebrae")
    for level, vert in spine.vertebrae.items():
        v = np.asarray(vert.vertices_mm)
        f = np.asarray(vert.faces)
        if v.ndim != 2 or v.shape[1] != 3 or v.shape[0] == 0:
            raise ValueError(f"L{level}: expected (V, 3) vertices with V > 0, got {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or f.shape[0] == 0:
            raise ValueError(f"L{level}: expected (F, 3) faces with F > 0, got {f.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"L{level}: vertices contain non-finite values")
        if f.min() < 0 or f.max() >= v.shape[0]:
            raise ValueError(
                f"L{level}: face indices must lie in [0, {v.shape[0] - 1}], "
                f"got [{f.min()}, {f.max()}]"
            )
        if np.asarray(vert.part).shape != (v.shape[0],):
            raise ValueError(
                f"L{level}: expected ({v.shape[0]},) part codes, got {np.asarray(vert.part).shape}"
            )


def check_pose(T: np.ndarray, name: str) -> np.ndarray:
    """Return ``T`` as a (4, 4) float64 rigid transform or raise ValueError."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"expected {name} as a (4, 4) transform, got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name} contains non-finite values")
    R = T[:3, :3]
    if not np.allclose(T[3], [0, 0, 0, 1]) or not np.allclose(R @ R.T, np.eye(3), atol=1e-5):
        raise ValueError(f"{name} is not a rigid transform (rotation not orthonormal)")
    return T


def check_positive(value: float, name: str) -> None:
    """Raise ValueError unless ``value`` is a finite number > 0."""
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
