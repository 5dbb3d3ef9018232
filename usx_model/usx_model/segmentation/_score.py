"""The bone score of coarse scanlines, compiled (the kernel of ``bone.bone_score``).

One pass per scanline: its cumulative sum, then every window mean the score needs, read
from it. The float32 arithmetic is NumPy's, step for step (running sum in float32, each
window's difference times the float32 reciprocal of its clipped length, the same
operations in the same order), so the scores equal a vectorised NumPy evaluation bit for
bit (``test/segmentation/test_score.py``), without the ~15 temporaries per block of
scanlines that NumPy allocated and walked (timings: docs/results.md, Speed).
"""

from __future__ import annotations

import functools

import numpy as np


def score_scanlines(
    coarse: np.ndarray, m: int, k: int, gap: int, w: int, first_row: int, end_row: int
) -> np.ndarray:
    """Bone score (ridge x shadow) of each coarse pixel.

    Args:
        coarse: (C, R) uint8 scanlines (coarse column, coarse row = depth).
        m: rows of the echo window from the pixel down.
        k: rows of the ridge's windows above the pixel and below the echo window.
        gap: rows skipped below the pixel before the shadow window.
        w: rows of the shadow window and of the window in front of the pixel.
        first_row, end_row: rows outside [first_row, end_row) score 0.

    Returns:
        (C, R) float32 scores in [0, 1].
    """
    out = np.empty(coarse.shape, dtype=np.float32)
    _kernel()(np.ascontiguousarray(coarse, dtype=np.uint8), m, k, gap, w, first_row, end_row, out)
    return out


@functools.cache
def _kernel():
    """Compiled (or loaded from Numba's cache) on first use; ``bone.warm_up`` does it."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(coarse, m, k, gap, w, first_row, end_row, out):  # pragma: no cover - compiled
        n_cols, n = coarse.shape
        pad = max(m + k, gap + w)
        # the windows [r + a, r + b): echo, above, below the echo, shadow, front
        a = np.array([0, -k, m, gap, -w])
        b = np.array([m, 0, m + k, gap + w, 0])
        # float32(1 / rows inside the scanline) of each window at each row (1 when empty)
        inv = np.empty((5, n), dtype=np.float32)
        for j in range(5):
            for r in range(n):
                count = max(min(max(r + b[j], 0), n) - min(max(r + a[j], 0), n), 1)
                inv[j, r] = np.float32(1.0 / count)
        # the running sum, edge-padded so that every window reads inside it
        csum = np.zeros(n + 1 + 2 * pad, dtype=np.float32)
        zero, one = np.float32(0.0), np.float32(1.0)
        scale, quarter, two = np.float32(1 / 255), np.float32(0.25), np.float32(2.0)
        for c in range(n_cols):
            acc = zero
            for r in range(n):
                acc = acc + np.float32(coarse[c, r]) * scale
                csum[pad + 1 + r] = acc
            for i in range(pad + 1 + n, n + 1 + 2 * pad):
                csum[i] = acc
            for r in range(n):
                if r < first_row or r >= end_row:
                    out[c, r] = zero
                    continue
                q = pad + r
                s = (csum[q + m] - csum[q]) * inv[0, r]
                above = (csum[q] - csum[q - k]) * inv[1, r]
                below = (csum[q + m + k] - csum[q + m]) * inv[2, r]
                # a ridge stands out above the pixel and below its echo (a sector border
                # over black is only a step)
                ridge = s - max(above, below)
                shadow = (csum[q + gap + w] - csum[q + gap]) * inv[3, r]
                # shadow evidence: the share of the brightness in front (the tissue over
                # the shadow's length, or a quarter of the echo when that is darker, e.g. a
                # water bath) missing beneath; soft tissue has tissue beneath and scores ~0
                front = max((csum[q] - csum[q - w]) * inv[4, r], quarter * s)
                dark = one - shadow / front if front > zero else zero
                ridge = min(max(ridge * two, zero), one)
                out[c, r] = ridge * min(max(dark, zero), one)

    return kernel
