"""Window means along scanlines from cumulative sums (helpers of ``bone.bone_score``)."""

from __future__ import annotations

import functools

import numpy as np


class BoxMeans:
    """Means of scanline windows [r + a, r + b) for every row r, from one cumulative sum.

    Windows are clipped to the scanline; an empty window gives 0 (no evidence). Shifted
    slices of an edge-padded cumulative sum avoid per-window gathers.
    """

    def __init__(self, scan: np.ndarray, reach: int) -> None:
        n_cols, self.n = scan.shape
        self.pad = reach
        self.csum = np.empty((n_cols, self.n + 1 + 2 * reach), dtype=np.float32)
        self.csum[:, : reach + 1] = 0.0
        np.cumsum(scan, axis=1, out=self.csum[:, reach + 1 : reach + 1 + self.n])
        self.csum[:, reach + 1 + self.n :] = self.csum[:, reach + self.n : reach + 1 + self.n]

    def __call__(self, a: int, b: int) -> np.ndarray:
        """(C, R) means of rows [r + a, r + b); requires -reach <= a <= b <= reach."""
        lo = self.pad + a
        hi = self.pad + b
        diff = self.csum[:, hi : hi + self.n] - self.csum[:, lo : lo + self.n]
        diff *= _inv_counts(self.n, a, b)
        return diff


@functools.lru_cache(maxsize=64)
def _inv_counts(n: int, a: int, b: int) -> np.ndarray:
    """(n,) float32 1 / number of rows of [r + a, r + b) inside [0, n) (1 when empty).

    Cached: a stream of frames of one size asks for the same few windows every frame.
    """
    r = np.arange(n)
    count = np.clip(r + b, 0, n) - np.clip(r + a, 0, n)
    out = (1.0 / np.maximum(count, 1)).astype(np.float32)
    out.flags.writeable = False
    return out


def clip01(x: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] in place (ufuncs: np.clip's wrapper costs more than the work here)."""
    np.maximum(x, 0.0, out=x)
    return np.minimum(x, 1.0, out=x)
