"""Pixel-nearest-neighbour insertion of tracked 2D frames into a base-frame volume.

Each valid pixel (u, v) goes to the voxel whose centre is nearest to its position
``T_base_pixel @ (u, v, 0, 1)`` (PLUS's "nearest neighbour" pixel insertion); pixels that
fall outside the grid are skipped. Per frame this is one 3x3 affine map of a precomputed
pixel grid, a bounds test and the update of the voxel, in one compiled pass over the pixels
(``compounding.scatter``); ``voxel_indices`` gives the same mapping as arrays. Results are
deterministic: pixels update their voxels in raster order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.compounding.scatter import scatter_frame
from usx_model.compounding.volume import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    CompoundingMode,
    VolumeGrid,
    check_memory_budget,
)

# Corners within this many voxels of the grid boundary take the per-pixel bounds test:
# float32 rounding of interior pixels must never step outside.
_BOUNDARY_MARGIN_VOX = 1e-3


def insert_stride(pixel_mm: tuple[float, float], voxel_mm: float) -> int:
    """The largest pixel stride (rows and columns) that keeps the inserted pixels no more
    than two thirds of a voxel apart (>= 1).

    Nearest-voxel insertion of 0.15 mm pixels into 0.5 mm voxels sends about ten pixels to
    each voxel a frame crosses; every other row and column still reaches 99.5 % of those
    voxels, at under a third of the cost (docs/results.md). The bone points come from the
    full-resolution frame, not the volume.
    """
    sizes = [float(v) for v in pixel_mm] + [float(voxel_mm)]
    if not all(np.isfinite(v) and v > 0 for v in sizes):
        raise ValueError(f"expected positive pixel and voxel sizes, got {pixel_mm}, {voxel_mm}")
    return max(1, int(np.floor(voxel_mm / (1.5 * max(sizes[:-1])) + 1e-9)))


def _filled(n: int, dtype: type, value: float) -> np.ndarray:
    array = np.empty(n, dtype=dtype)
    array.fill(value)
    return array


@dataclass
class CompoundingResult:
    """A compounded volume.

    Attributes:
        value: (nx, ny, nz) float32 compounded intensity; ``empty_value`` where no pixel landed.
        coverage: (nx, ny, nz) uint32 number of pixels that landed in each voxel.
        grid: the voxel grid (``grid.affine`` maps indices to base-frame mm).
        frames_inserted: frames given to ``insert``.
        pixels_inserted: pixels that landed inside the grid.
    """

    value: np.ndarray
    coverage: np.ndarray
    grid: VolumeGrid
    frames_inserted: int
    pixels_inserted: int


class Compounder:
    """Accumulates tracked frames of one image size into one volume.

    Args:
        grid: the output grid (base frame, mm).
        image_shape: (rows, columns) of every frame.
        mode: how pixels combine in a voxel.
        mask: (rows, columns) bool, True for pixels to insert (e.g. ``fan_mask``);
            None inserts every pixel.
        memory_budget_bytes: refuse grids whose arrays would exceed this (``ValueError``).
        pixel_stride: insert every ``pixel_stride``-th row and column of the mask only
            (see :func:`insert_stride`); 1 inserts every masked pixel.
    """

    def __init__(
        self,
        grid: VolumeGrid,
        image_shape: tuple[int, int],
        mode: CompoundingMode = CompoundingMode.MEAN,
        mask: np.ndarray | None = None,
        memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
        pixel_stride: int = 1,
    ) -> None:
        self.grid = grid
        self.mode = CompoundingMode(mode)
        check_memory_budget(grid, self.mode, memory_budget_bytes)
        if len(image_shape) != 2 or min(image_shape) < 1:
            raise ValueError(f"expected image_shape (rows, columns) >= 1, got {image_shape}")
        self.image_shape = (int(image_shape[0]), int(image_shape[1]))
        if mask is None:
            mask = np.ones(self.image_shape, dtype=bool)
        mask = np.asarray(mask)
        if mask.shape != self.image_shape or mask.dtype != bool:
            raise ValueError(
                f"expected a bool mask of shape {self.image_shape}, got {mask.dtype} {mask.shape}"
            )
        if int(pixel_stride) != pixel_stride or pixel_stride < 1:
            raise ValueError(f"pixel_stride: expected an integer >= 1, got {pixel_stride}")
        if pixel_stride > 1:
            strided = np.zeros_like(mask)
            strided[:: int(pixel_stride), :: int(pixel_stride)] = True
            mask = mask & strided
        self.pixel_stride = int(pixel_stride)
        # Pixel grid of the masked pixels only, computed once: raster order index and (u, v).
        self._pixel_index = np.flatnonzero(mask)
        v, u = np.divmod(self._pixel_index, self.image_shape[1])
        self._uv = np.stack([u, v]).astype(np.float32)  # (2, P)
        corner_rows, corner_cols = (
            [v.min(), v.max()] if v.size else [0, 0],
            [u.min(), u.max()] if u.size else [0, 0],
        )
        self._corners_uv = np.array(
            [[c, r] for r in corner_rows for c in corner_cols], dtype=np.float64
        ).T  # (2, 4) bounding box of the masked pixels
        self._strides = np.array([grid.shape[1] * grid.shape[2], grid.shape[2], 1], dtype=np.intp)
        self._index_from_world = np.linalg.inv(grid.affine)
        n = grid.n_voxels
        # Filled explicitly (not np.zeros) so that the pages are touched here, once, rather
        # than page-faulting inside the first frames' inserts of a live sweep.
        self._count = _filled(n, np.uint32, 0)  # coverage
        initial = -np.inf if self.mode is CompoundingMode.MAXIMUM else 0.0
        self._acc = _filled(n, np.float32, initial)
        if self.mode is CompoundingMode.LATEST:
            self._weight = _filled(n, np.uint32, 0)
            self._frame_id = _filled(n, np.int32, -1)
        self.frames_inserted = 0
        self.pixels_inserted = 0

    def _continuous_index(self, T_base_pixel: np.ndarray) -> np.ndarray:
        """(3, 4) map from homogeneous pixels (u, v, 0, 1) to continuous voxel indices."""
        T = np.asarray(T_base_pixel, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"expected a finite (4, 4) T_base_pixel, got shape {T.shape}")
        return (self._index_from_world @ T)[:3]

    def voxel_indices(self, T_base_pixel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat voxel index of every masked pixel that lands in the grid.

        Args:
            T_base_pixel: (4, 4) affine from homogeneous pixels (u, v, 0, 1) to base mm.

        Returns:
            ``(flat_voxel, pixel)``: (K,) intp flat indices into the C-ordered volume and
            (K,) intp raster indices of the corresponding image pixels.
        """
        # pixel -> continuous voxel index, +0.5 so that truncation rounds to the nearest centre
        M = self._continuous_index(T_base_pixel)
        A = M[:, :2]
        b = M[:, 3] + 0.5
        corners = A @ self._corners_uv + b[:, None]
        shape = np.array(self.grid.shape)[:, None]
        all_inside = np.all(corners >= _BOUNDARY_MARGIN_VOX) and np.all(
            corners <= shape - _BOUNDARY_MARGIN_VOX
        )
        # Per-axis multiply-adds rather than a (3, 2) @ (2, P) matmul: BLAS gains nothing
        # with an inner dimension of 2 and its thread start-up dominated on a busy CPU.
        u, v = self._uv
        pixel = self._pixel_index
        coords = []
        for axis in range(3):
            ck = u * np.float32(A[axis, 0])
            ck += v * np.float32(A[axis, 1])
            ck += np.float32(b[axis])
            coords.append(ck)
        if not all_inside:
            inside = np.ones(pixel.size, dtype=bool)
            for axis, ck in enumerate(coords):
                inside &= ck >= 0
                inside &= ck < self.grid.shape[axis]
            coords = [ck[inside] for ck in coords]
            pixel = pixel[inside]
        # non-negative here, so truncation is floor
        flat = coords[0].astype(np.intp) * self._strides[0]
        flat += coords[1].astype(np.intp) * self._strides[1]
        flat += coords[2].astype(np.intp)
        return flat, pixel

    def insert(self, image: np.ndarray, T_base_pixel: np.ndarray) -> int:
        """Insert one frame; return the number of pixels that landed in the grid.

        Args:
            image: (rows, columns) intensities (any real dtype; stored as float32).
            T_base_pixel: (4, 4) from ``usx_model.tracking.calibration.base_pixel_transform``.
        """
        image = np.asarray(image)
        if image.shape != self.image_shape:
            raise ValueError(f"expected an image of shape {self.image_shape}, got {image.shape}")
        M = self._continuous_index(T_base_pixel)
        latest = self.mode is CompoundingMode.LATEST
        landed = scatter_frame(
            self._uv,
            self._pixel_index,
            image.reshape(-1).astype(np.float32, copy=False),
            M[:, :2].astype(np.float32),
            (M[:, 3] + 0.5).astype(np.float32),
            self.grid.shape,
            self.mode.value,
            self.frames_inserted,
            self._acc,
            self._count,
            self._weight if latest else self._count,
            self._frame_id if latest else self._count.view(np.int32),
        )
        self.frames_inserted += 1
        self.pixels_inserted += landed
        return landed

    @property
    def coverage(self) -> np.ndarray:
        """(nx, ny, nz) uint32 pixel hits per voxel (a view, not a copy)."""
        return self._count.reshape(self.grid.shape)

    def result(self, empty_value: float = 0.0) -> CompoundingResult:
        """The compounded volume so far (new arrays; the compounder can keep going)."""
        hit = self._count > 0
        value = np.full(self.grid.n_voxels, empty_value, dtype=np.float32)
        if self.mode is CompoundingMode.MEAN:
            value[hit] = self._acc[hit] / self._count[hit]
        elif self.mode is CompoundingMode.MAXIMUM:
            value[hit] = self._acc[hit]
        else:
            value[hit] = self._acc[hit] / self._weight[hit]
        return CompoundingResult(
            value=value.reshape(self.grid.shape),
            coverage=self.coverage.copy(),
            grid=self.grid,
            frames_inserted=self.frames_inserted,
            pixels_inserted=self.pixels_inserted,
        )


def compound_frames(
    images: np.ndarray,
    T_base_pixel: np.ndarray,
    grid: VolumeGrid,
    mode: CompoundingMode = CompoundingMode.MEAN,
    mask: np.ndarray | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    empty_value: float = 0.0,
) -> CompoundingResult:
    """Compound a whole sweep in one call.

    Args:
        images: (F, rows, columns) frames.
        T_base_pixel: (F, 4, 4) pixel -> base affine per frame (mm).
        grid, mode, mask, memory_budget_bytes: as for ``Compounder``.
        empty_value: value of voxels no pixel reached.

    Returns:
        The ``CompoundingResult``.
    """
    images = np.asarray(images)
    T_base_pixel = np.asarray(T_base_pixel)
    if images.ndim != 3 or T_base_pixel.shape != (images.shape[0], 4, 4):
        raise ValueError(
            f"expected (F, rows, columns) images and (F, 4, 4) transforms, got {images.shape} "
            f"and {T_base_pixel.shape}"
        )
    compounder = Compounder(grid, images.shape[1:], mode, mask, memory_budget_bytes)
    for image, T in zip(images, T_base_pixel, strict=True):
        compounder.insert(image, T)
    return compounder.result(empty_value)


def warm_up(mode: CompoundingMode = CompoundingMode.MEAN) -> None:
    """Insert one toy frame, so that the compiled scatter is loaded (or compiled) now.

    Its first call imports Numba and loads the kernel from the cache (about half a second,
    seconds when it compiles): done during a sweep, a node's frame queue overflows.
    """
    grid = VolumeGrid.from_bounds((0.0, 0.0, 0.0), (2.0, 2.0, 2.0), 1.0)
    Compounder(grid, (2, 2), mode).insert(np.ones((2, 2), np.uint8), np.eye(4))
