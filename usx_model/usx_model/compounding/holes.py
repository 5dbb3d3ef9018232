"""Hole filling: empty voxels take the distance-weighted mean of filled neighbours.

PLUS fills the gaps between sparse frames with a small Gaussian kernel over the voxels
that received data; this is that, for a cubic kernel of radius ``radius_vox``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def gaussian_kernel(radius_vox: int, sigma_vox: float) -> np.ndarray:
    """(2r+1, 2r+1, 2r+1) float64 weights exp(-d^2 / (2 sigma^2)), d in voxels."""
    if radius_vox < 1 or not sigma_vox > 0:
        raise ValueError(
            f"expected radius_vox >= 1 and sigma_vox > 0, got {radius_vox}, {sigma_vox}"
        )
    r = np.arange(-radius_vox, radius_vox + 1)
    d2 = r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2
    return np.exp(-d2 / (2.0 * sigma_vox**2))


def fill_holes(
    value: np.ndarray,
    coverage: np.ndarray,
    radius_vox: int = 1,
    sigma_vox: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill voxels with zero coverage from filled voxels within the kernel.

    Args:
        value: (nx, ny, nz) compounded values (empty voxels' values are ignored).
        coverage: (nx, ny, nz) pixel hits per voxel; > 0 marks a filled voxel.
        radius_vox: kernel half-width, voxels.
        sigma_vox: Gaussian width of the weights, voxels.

    Returns:
        ``(filled, is_filled)``: (nx, ny, nz) float32 values, where original data is kept,
        holes with at least one filled neighbour take the weighted mean of those neighbours,
        the rest keep their input value; and the bool mask of voxels that now hold data.
    """
    value = np.asarray(value)
    coverage = np.asarray(coverage)
    if value.ndim != 3 or value.shape != coverage.shape:
        raise ValueError(
            f"expected value and coverage of the same 3D shape, got {value.shape} and "
            f"{coverage.shape}"
        )
    kernel = gaussian_kernel(radius_vox, sigma_vox)
    known = coverage > 0
    known_f = known.astype(np.float64)
    weighted_sum = ndimage.correlate(
        np.where(known, value, 0.0).astype(np.float64), kernel, mode="constant"
    )
    weight = ndimage.correlate(known_f, kernel, mode="constant")
    holes = ~known & (weight > 0)
    filled = value.astype(np.float32, copy=True)
    filled[holes] = (weighted_sum[holes] / weight[holes]).astype(np.float32)
    return filled, known | holes
