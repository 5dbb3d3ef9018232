"""The plate's echo in one B-mode frame: a straight line, found column by column.

Each column's first strong echo (the first local maximum above ``min_level`` and at least
``rel_level`` of the column's brightest pixel; the plate-probe-plate reverberation comes
later and weaker) is located to a fraction of a pixel by a parabola through the peak and
its two neighbours. A RANSAC line through those peaks keeps the columns that agree
within ``inlier_px``; its least-squares refit gives the line. A frame where fewer than
``min_columns`` share of the sector columns agree (the plate tilted past the point where
its echo fades, bubbles, the probe off the water) yields no line.

Pixel coordinates as in ``tracking.calibration``: u = column, v = row, centres at integers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PlateLineParams:
    """Settings of the line detection.

    Attributes:
        min_level: a peak must be at least this bright (uint8 grey).
        rel_level: and at least this share of its column's brightest pixel.
        min_row: rows above this are ignored (the probe's near field).
        inlier_px: RANSAC inlier distance, pixels (along v).
        min_columns: share of sector columns that must agree with the line.
        iterations: RANSAC draws.
    """

    min_level: int = 90
    rel_level: float = 0.6
    min_row: int = 20
    inlier_px: float = 1.5
    min_columns: float = 0.5
    iterations: int = 60


@dataclass(frozen=True)
class PlateLine:
    """The plate in one frame.

    Attributes:
        uv_px: (K, 2) sub-pixel points (u, v) on the plate, inlier columns only.
        slope: dv/du of the fitted line.
        intercept: v at u = 0.
        rms_px: RMS distance (along v) of the points from the line.
    """

    uv_px: np.ndarray
    slope: float
    intercept: float
    rms_px: float

    def v_at(self, u: np.ndarray | float) -> np.ndarray | float:
        """Row of the fitted line at column(s) ``u``."""
        return self.slope * np.asarray(u) + self.intercept


def column_peaks(image: np.ndarray, params: PlateLineParams) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) sub-pixel first-echo peak of every column that has one."""
    img = image.astype(np.float32)
    rows = img.shape[0]
    col_max = img.max(axis=0)
    thr = np.maximum(params.min_level, params.rel_level * col_max)
    body = img[params.min_row : rows - 1]
    above = img[params.min_row - 1 : rows - 2]
    below = img[params.min_row + 1 : rows]
    peak = (body >= above) & (body > below) & (body >= thr[None, :])
    has = peak.any(axis=0)
    u = np.flatnonzero(has)
    r = np.argmax(peak[:, has], axis=0) + params.min_row
    y0, y1, y2 = img[r - 1, u], img[r, u], img[r + 1, u]
    denom = y0 - 2 * y1 + y2
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0)
    return u.astype(np.float64), r + np.clip(frac, -0.5, 0.5)


def detect_plate_line(
    image: np.ndarray, params: PlateLineParams | None = None, seed: int = 0
) -> PlateLine | None:
    """The plate's line in a (rows, cols) uint8 frame, or None; see the module docstring.

    Raises:
        ValueError: not a 2D uint8 image.
    """
    p = params or PlateLineParams()
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected a (rows, cols) uint8 B-mode image, got {img.dtype} {img.shape}")
    n_sector = int((img.max(axis=0) > 0).sum())
    u, v = column_peaks(img, p)
    need = max(2, int(np.ceil(p.min_columns * n_sector)))
    if len(u) < need:
        return None
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(p.iterations):
        i, j = rng.choice(len(u), 2, replace=False)
        if u[i] == u[j]:
            continue
        a = (v[j] - v[i]) / (u[j] - u[i])
        inl = np.abs(v - (v[i] + a * (u - u[i]))) <= p.inlier_px
        if best is None or inl.sum() > best.sum():
            best = inl
    if best is None or best.sum() < need:
        return None
    for _ in range(2):  # refit on the inliers, then re-select with the refit line
        a, b = np.polyfit(u[best], v[best], 1)
        best = np.abs(v - (a * u + b)) <= p.inlier_px
    a, b = np.polyfit(u[best], v[best], 1)
    if best.sum() < need:
        return None
    res = v[best] - (a * u[best] + b)
    uv = np.stack([u[best], v[best]], axis=1)
    return PlateLine(uv, float(a), float(b), float(np.sqrt(np.mean(res**2))))
