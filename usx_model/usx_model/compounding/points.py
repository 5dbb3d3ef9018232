"""Bone pixels of tracked frames -> 3D points in the base frame (for the segmentation stage)."""

from __future__ import annotations

import numpy as np

from usx_model.tracking.calibration import pixels_to_base


def mask_to_base_points(mask: np.ndarray, T_base_pixel: np.ndarray) -> np.ndarray:
    """Points of the True pixels of one frame's mask.

    Args:
        mask: (rows, columns) bool, e.g. a bone-surface mask, indexed [v, u].
        T_base_pixel: (4, 4) pixel -> base affine of that frame (mm).

    Returns:
        (K, 3) float64 base-frame points, mm, in raster order of the pixels.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.dtype != bool:
        raise ValueError(f"expected a (rows, columns) bool mask, got {mask.dtype} {mask.shape}")
    v, u = np.nonzero(mask)
    return pixels_to_base(np.stack([u, v], axis=1), T_base_pixel)


def sweep_to_base_points(
    masks: np.ndarray, T_base_pixel: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Points of the True pixels of every frame of a sweep.

    Args:
        masks: (F, rows, columns) bool.
        T_base_pixel: (F, 4, 4) per-frame pixel -> base affines (mm).

    Returns:
        ``(points, frame)``: (K, 3) float64 base-frame mm and (K,) int64 frame index of
        each point.
    """
    masks = np.asarray(masks)
    T_base_pixel = np.asarray(T_base_pixel, dtype=np.float64)
    if masks.ndim != 3 or masks.dtype != bool or T_base_pixel.shape != (masks.shape[0], 4, 4):
        raise ValueError(
            f"expected (F, rows, columns) bool masks and (F, 4, 4) transforms, got "
            f"{masks.dtype} {masks.shape} and {T_base_pixel.shape}"
        )
    f, v, u = np.nonzero(masks)
    uv1 = np.stack([u, v, np.ones_like(u)], axis=1).astype(np.float64)  # (K, 3)
    A = T_base_pixel[f][:, :3, [0, 1, 3]]  # (K, 3, 3): columns u, v, translation
    return np.einsum("kij,kj->ki", A, uv1), f.astype(np.int64)
