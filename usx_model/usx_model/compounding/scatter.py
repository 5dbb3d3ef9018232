"""The per-frame pixel scatter of ``Compounder.insert``, compiled.

One pass over the masked pixels: map (u, v) to the continuous voxel index with the frame's
affine, in float32 and in the same order of operations as ``Compounder.voxel_indices``
(u * a0, + v * a1, + b; no fused multiply-add), skip pixels outside the grid, and update
the voxel in pixel order. The interpreted version made a dozen full-size temporaries and
four ``ufunc.at`` scatters per frame (``usx bench compounding``, docs/results.md); the
results are identical (tested against ``voxel_indices`` + ``ufunc.at``).
"""

from __future__ import annotations

import functools

import numpy as np

#: Mode codes of the kernel (``CompoundingMode`` values in this order).
MODE_CODES = {"mean": 0, "maximum": 1, "latest": 2}


def scatter_frame(
    uv: np.ndarray,
    pixel_index: np.ndarray,
    image_flat: np.ndarray,
    affine: np.ndarray,
    offset: np.ndarray,
    shape: tuple[int, int, int],
    mode: str,
    frame: int,
    acc: np.ndarray,
    count: np.ndarray,
    weight: np.ndarray,
    frame_id: np.ndarray,
) -> int:
    """Scatter one frame's masked pixels into the accumulators; return how many landed.

    Args:
        uv: (2, P) float32 pixel columns and rows of the masked pixels.
        pixel_index: (P,) raster index of each masked pixel into ``image_flat``.
        image_flat: (rows * columns,) float32 intensities.
        affine: (3, 2) float32 and ``offset`` (3,) float32: continuous voxel index (+0.5,
            so that truncation rounds to the nearest centre) = affine @ (u, v) + offset.
        shape: the grid's (nx, ny, nz).
        mode: a key of :data:`MODE_CODES`.
        frame: this frame's number (``latest`` mode).
        acc, count: (nx * ny * nz,) float32 and uint32 accumulators, updated in place.
        weight, frame_id: (nx * ny * nz,) uint32 and int32 for ``latest`` (any array of
            length >= 1 otherwise; untouched).
    """
    return int(
        _kernel()(
            uv,
            pixel_index,
            image_flat,
            affine,
            offset,
            np.asarray(shape, dtype=np.int64),
            MODE_CODES[mode],
            np.int32(frame),
            acc,
            count,
            weight,
            frame_id,
        )
    )


@functools.cache
def _kernel():
    """Compiled (or loaded from Numba's cache) on first use, not at import."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def scatter(
        uv, pixel_index, image, a, b, shape, mode, frame, acc, count, weight, frame_id
    ):  # pragma: no cover - compiled
        nx, ny, nz = shape[0], shape[1], shape[2]
        landed = 0
        for p in range(pixel_index.shape[0]):
            u, v = uv[0, p], uv[1, p]
            x = u * a[0, 0]
            x += v * a[0, 1]
            x += b[0]
            y = u * a[1, 0]
            y += v * a[1, 1]
            y += b[1]
            z = u * a[2, 0]
            z += v * a[2, 1]
            z += b[2]
            if not (x >= 0 and x < nx and y >= 0 and y < ny and z >= 0 and z < nz):
                continue
            f = (np.int64(x) * ny + np.int64(y)) * nz + np.int64(z)
            value = image[pixel_index[p]]
            if mode == 0:
                acc[f] += value
            elif mode == 1:
                # np.maximum: a NaN on either side wins
                if value > acc[f] or value != value:
                    acc[f] = value
            else:
                if frame_id[f] != frame:
                    acc[f] = 0.0
                    weight[f] = 0
                    frame_id[f] = frame
                acc[f] += value
                weight[f] += 1
            count[f] += 1
            landed += 1
        return landed

    return scatter
