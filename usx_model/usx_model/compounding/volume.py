"""The compounding grid, compounding modes and the memory guard.

A ``VolumeGrid`` is axis-aligned in the robot base frame (``lbr_link_0``), millimetres.
Voxel (i, j, k) has its *centre* at ``origin_mm + (i, j, k) * spacing_mm``; arrays are
indexed ``[i, j, k]`` (x, y, z of the base frame), C order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

#: Default memory budget for one compounding volume (accumulators + result), bytes.
DEFAULT_MEMORY_BUDGET_BYTES = 1 << 30


class CompoundingMode(StrEnum):
    """How pixels landing in the same voxel combine (as in PLUS's volume reconstructor).

    MEAN: average of every pixel hit. MAXIMUM: the largest pixel value.
    LATEST: the newest frame that reached the voxel overwrites it (the mean of that
    frame's pixels in the voxel, so that the result does not depend on pixel order).
    """

    MEAN = "mean"
    MAXIMUM = "maximum"
    LATEST = "latest"


# Bytes per voxel held while compounding plus the float32 result volume:
# MEAN: float32 sum + uint32 count; MAXIMUM: float32 max + uint32 count;
# LATEST: float32 sum + uint32 weight + int32 frame id + uint32 coverage.
_BYTES_PER_VOXEL = {
    CompoundingMode.MEAN: 8 + 4,
    CompoundingMode.MAXIMUM: 8 + 4,
    CompoundingMode.LATEST: 16 + 4,
}


@dataclass(frozen=True)
class VolumeGrid:
    """Axis-aligned voxel grid in the base frame.

    Attributes:
        origin_mm: (3,) centre of voxel (0, 0, 0), base frame, mm.
        spacing_mm: (3,) voxel size along base x, y, z, mm.
        shape: (3,) number of voxels along x, y, z.
    """

    origin_mm: tuple[float, float, float]
    spacing_mm: tuple[float, float, float]
    shape: tuple[int, int, int]

    def __post_init__(self) -> None:
        origin = np.asarray(self.origin_mm, dtype=np.float64)
        spacing = np.broadcast_to(np.asarray(self.spacing_mm, dtype=np.float64), (3,))
        shape = np.asarray(self.shape)
        if origin.shape != (3,) or not np.all(np.isfinite(origin)):
            raise ValueError(f"expected origin_mm as 3 finite numbers, got {self.origin_mm}")
        if not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise ValueError(f"expected spacing_mm > 0 (one or 3 numbers), got {self.spacing_mm}")
        if shape.shape != (3,) or not np.issubdtype(shape.dtype, np.integer) or np.any(shape < 1):
            raise ValueError(f"expected shape as 3 positive integers, got {self.shape}")
        object.__setattr__(self, "origin_mm", tuple(float(v) for v in origin))
        object.__setattr__(self, "spacing_mm", tuple(float(v) for v in spacing))
        object.__setattr__(self, "shape", tuple(int(v) for v in shape))

    @classmethod
    def from_bounds(cls, min_mm, max_mm, spacing_mm) -> VolumeGrid:
        """Smallest grid whose voxel centres start at ``min_mm`` and reach ``max_mm``."""
        lo = np.asarray(min_mm, dtype=np.float64)
        hi = np.asarray(max_mm, dtype=np.float64)
        spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (3,))
        if lo.shape != (3,) or hi.shape != (3,) or np.any(hi < lo):
            raise ValueError(f"expected 3D bounds with min <= max, got {lo} and {hi}")
        if np.any(spacing <= 0):
            raise ValueError(f"expected spacing_mm > 0, got {spacing_mm}")
        shape = np.floor((hi - lo) / spacing + 1e-9).astype(int) + 1
        return cls(tuple(lo), tuple(spacing), tuple(shape))

    @property
    def n_voxels(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def affine(self) -> np.ndarray:
        """(4, 4) voxel index (i, j, k, 1) -> base-frame point, mm."""
        A = np.diag([*self.spacing_mm, 1.0])
        A[:3, 3] = self.origin_mm
        return A

    def index_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """(N, 3) voxel indices (may be fractional) -> (N, 3) base-frame points, mm."""
        return np.asarray(ijk, dtype=np.float64) * self.spacing_mm + self.origin_mm

    def world_to_index(self, xyz_mm: np.ndarray) -> np.ndarray:
        """(N, 3) base-frame points, mm -> (N, 3) continuous voxel indices."""
        return (np.asarray(xyz_mm, dtype=np.float64) - self.origin_mm) / self.spacing_mm


def volume_nbytes(grid: VolumeGrid, mode: CompoundingMode) -> int:
    """Bytes held by the accumulators of ``mode`` plus the float32 result volume."""
    return grid.n_voxels * _BYTES_PER_VOXEL[CompoundingMode(mode)]


def check_memory_budget(grid: VolumeGrid, mode: CompoundingMode, budget_bytes: int) -> int:
    """Refuse a volume that would not fit the budget; return its size in bytes.

    Raises:
        ValueError: naming the volume's shape, size and the budget.
    """
    need = volume_nbytes(grid, mode)
    if need > budget_bytes:
        raise ValueError(
            f"volume of shape {grid.shape} at spacing {grid.spacing_mm} mm needs "
            f"{need / 2**20:.1f} MiB for '{CompoundingMode(mode).value}' compounding "
            f"(accumulators + result), over the memory budget of {budget_bytes / 2**20:.1f} MiB; "
            "use a coarser spacing_mm, a smaller extent or a larger budget"
        )
    return need
