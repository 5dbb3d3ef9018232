"""Breathing compensation of a sweep's bone points, from the bone surface itself.

A prone patient's back rises and falls by 2-4 mm at 0.2-0.3 Hz. Whether the robot holds
its pose (the tissue under the probe compresses) or follows the skin in force control,
the bone points of a frame land displaced by the patient's breathing offset ``d(t)``
along the antero-posterior axis at the frame's acquisition time, and the compounded
surface ripples.

The sweep itself measures ``d(t)``: a serpentine sweep images most of the surface twice
or three times, tens of seconds apart, and the bone cannot be at two heights. Project
the points on the plane normal to the axis, grid that plane, and in each cell compare
the surface height (the points' coordinate along the axis) seen by frames at different
times: ``h = H(cell) + d(t) + noise``. Removing each cell's mean eliminates the unknown
anatomy ``H``, and ``d`` is fitted as a periodic signal (a fundamental and its first
harmonic) whose frequency is found by a scan. Anatomy cannot masquerade as a periodic
signal in time across passes that visit the same place at unrelated times, whereas any
function of time alone (a spline, say) could hide a deformation that the passes see
identically. Quasi-periodic breathing is what this models; a gasp is not.

The fit is applied only when it is significant (a peak-to-peak amplitude above
``min_peak_to_peak_mm`` and a clear drop of the cell-wise variance), so a still patient
keeps its points untouched. Units: mm, seconds (stamps in ns); base frame.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

#: rows (cell, frame heights) used for the frequency scan
SCAN_ROWS = 20000


@dataclass(frozen=True)
class BreathingParams:
    """Settings of the breathing fit.

    Attributes:
        cell_mm: grid cell of the plane normal to the axis.
        min_span_s: a cell counts only when its visits span at least this long (seen by
            two passes, not just by neighbouring frames of one).
        visit_gap_s: frames of a cell further apart than this start a new visit.
        freq_hz: (low, high, step) of the frequency scan.
        harmonics: periodic terms (1 = a sinusoid, 2 adds the first harmonic).
        min_peak_to_peak_mm: smaller fitted motion is not applied.
        min_variance_drop: the fit must remove at least this share of the cell-wise
            height variance to be applied.
        min_observability: below this share the sweep's timing aliases the breathing
            and the fit is not applied (see ``BreathingFit.observability``).
        huber_mm: residuals beyond this are down-weighted (IRLS), mm.
    """

    cell_mm: float = 1.5
    min_span_s: float = 2.0
    visit_gap_s: float = 0.5
    freq_hz: tuple[float, float, float] = (0.1, 0.6, 0.0025)
    harmonics: int = 2
    min_peak_to_peak_mm: float = 0.5
    min_variance_drop: float = 0.05
    min_observability: float = 0.1
    huber_mm: float = 0.5


@dataclass(frozen=True)
class BreathingFit:
    """The fitted motion ``d(t) = sum_k a_k sin(k w t) + b_k cos(k w t)`` along ``axis``.

    Attributes:
        axis: (3,) unit vector, base frame (the motion's direction, sign as given).
        freq_hz: fitted breathing rate (nan when nothing could be fitted).
        coef: (2 * harmonics,) [a_1, b_1, a_2, b_2, ...], mm.
        t0_ns: time origin of the model.
        peak_to_peak_mm: max - min of d over one period.
        variance_drop: share of the cell-wise height variance the fit removes.
        cells: grid cells used.
        applied: whether ``correct`` moves points (the fit is significant).
        observability: share of the fundamental's signal that differs between visits of
            a place (0: the sweep's timing aliases the breathing; nothing can be fitted).
    """

    axis: np.ndarray
    freq_hz: float
    coef: np.ndarray
    t0_ns: int
    peak_to_peak_mm: float
    variance_drop: float
    cells: int
    applied: bool
    observability: float = 0.0

    def displacement_mm(self, stamps_ns: np.ndarray) -> np.ndarray:
        """(N,) fitted d(t) at the stamps (zero when not applied)."""
        stamps_ns = np.asarray(stamps_ns)
        if not self.applied:
            return np.zeros(stamps_ns.shape)
        # one value per frame: a frame's ~10^2 points share its stamp
        frames, frame = _frames(stamps_ns.ravel())
        t = (frames - self.t0_ns) * 1e-9
        d = _basis(t, 2 * np.pi * self.freq_hz, len(self.coef) // 2) @ self.coef
        return d[frame].reshape(stamps_ns.shape)

    def correct(self, points_mm: np.ndarray, stamps_ns: np.ndarray) -> np.ndarray:
        """(N, 3) points moved back to the patient's mean position."""
        d = self.displacement_mm(stamps_ns)
        return np.asarray(points_mm, dtype=np.float64) - d[:, None] * self.axis

    def as_dict(self) -> dict:
        return {
            "applied": self.applied,
            "freq_hz": self.freq_hz,
            "peak_to_peak_mm": self.peak_to_peak_mm,
            "variance_drop": self.variance_drop,
            "cells": self.cells,
            "observability": self.observability,
        }


def _basis(t_s: np.ndarray, omega: float, harmonics: int) -> np.ndarray:
    cols = []
    for k in range(1, harmonics + 1):
        cols += [np.sin(k * omega * t_s), np.cos(k * omega * t_s)]
    return np.stack(cols, axis=1)


def _none(axis: np.ndarray, t0: int, cells: int) -> BreathingFit:
    return BreathingFit(axis, float("nan"), np.zeros(2), t0, 0.0, 0.0, cells, False)


def estimate_breathing(
    points_mm: np.ndarray,
    stamps_ns: np.ndarray,
    axis: np.ndarray,
    params: BreathingParams | None = None,
) -> BreathingFit:
    """Fit the breathing motion of one sweep; see the module docstring.

    Args:
        points_mm: (N, 3) bone points, base frame, mm.
        stamps_ns: (N,) acquisition stamp of each point's frame, ns.
        axis: (3,) the antero-posterior direction in the base frame (e.g. the mean beam
            direction of the sweep); normalised here.
        params: fit settings.

    Raises:
        ValueError: mismatched or malformed inputs.
    """
    p = params or BreathingParams()
    pts = np.asarray(points_mm, dtype=np.float64)
    stamps = np.asarray(stamps_ns)
    if pts.ndim != 2 or pts.shape[1] != 3 or stamps.shape != (len(pts),):
        raise ValueError(
            f"expected (N, 3) points and (N,) stamps, got {pts.shape} and {stamps.shape}"
        )
    axis = np.asarray(axis, dtype=np.float64)
    if axis.shape != (3,) or not np.all(np.isfinite(axis)) or np.linalg.norm(axis) < 1e-9:
        raise ValueError(f"expected a finite non-zero (3,) axis, got {axis}")
    axis = axis / np.linalg.norm(axis)
    t0 = int(stamps.min()) if len(stamps) else 0
    rows = _visit_heights(pts, stamps, axis, p)
    if rows is None:
        return _none(axis, t0, 0)
    cell, t_s, h, w = rows
    n_cells = int(cell.max()) + 1
    h_c = _demean(h, cell, w, n_cells)
    var0 = float(np.sum(w * h_c**2) / np.sum(w))

    # the frequency scan on at most SCAN_ROWS whole cells (a fixed draw): the same minimum
    # at a fraction of the cost; the final fit uses every row
    scan_cells = np.random.default_rng(0).permutation(n_cells)[
        : max(1, SCAN_ROWS * n_cells // len(h))
    ]
    rows = np.isin(cell, scan_cells)
    _, cell_s = np.unique(cell[rows], return_inverse=True)
    t_sc, h_sc, w_sc, n_sc = t_s[rows], h_c[rows], w[rows], len(scan_cells)

    def residual(f: float) -> float:
        # the fundamental alone: with harmonics, half the rate would fit as well
        X = _demean_cols(_basis(t_sc, 2 * np.pi * f, 1), cell_s, w_sc, n_sc)
        return _weighted_lstsq(X, h_sc, w_sc)[1]

    lo, hi, step = p.freq_hz
    # coarse scan, then the fine step around the coarse minimum
    coarse = np.arange(lo, hi + 1e-12, 4 * step)
    f = coarse[int(np.argmin([residual(f) for f in coarse]))]
    fine = np.arange(max(lo, f - 4 * step), min(hi, f + 4 * step) + 1e-12, step)
    f = float(fine[int(np.argmin([residual(f) for f in fine]))])
    B = _basis(t_s, 2 * np.pi * f, p.harmonics)
    X = _demean_cols(B, cell, w, n_cells)
    coef, _ = _irls(X, h_c, w, p.huber_mm)
    # How much of the fundamental survives the per-cell elimination: near 0 when every
    # place is revisited at the same breathing phase (passes timed at a whole number of
    # breaths), where breathing cannot be told from anatomy.
    sw = np.sqrt(w)[:, None]
    observability = float(
        np.linalg.svd(X[:, :2] * sw, compute_uv=False)[-1]
        / np.linalg.svd(B[:, :2] * sw, compute_uv=False)[0]
    )
    var1 = float(np.sum(w * (h_c - X @ coef) ** 2) / np.sum(w))
    drop = 1.0 - var1 / var0 if var0 > 0 else 0.0
    period = np.linspace(0, 1 / f, 200, endpoint=False)
    d = _basis(period, 2 * np.pi * f, p.harmonics) @ coef
    ptp = float(d.max() - d.min())
    applied = (
        ptp >= p.min_peak_to_peak_mm
        and drop >= p.min_variance_drop
        and observability >= p.min_observability
    )
    return BreathingFit(axis, float(f), coef, t0, ptp, float(drop), n_cells, applied, observability)


def _visit_heights(
    pts: np.ndarray, stamps: np.ndarray, axis: np.ndarray, p: BreathingParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Mean height and time per visit of a cell (median per frame first), for cells whose
    visits span ``min_span_s``.

    Returns (cell index, time s from the first stamp, height mm, weight = frames) or None.
    """
    if len(pts) == 0:
        return None
    e1 = np.cross(axis, [1.0, 0.0, 0.0])
    if np.linalg.norm(e1) < 0.5:
        e1 = np.cross(axis, [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    ij = np.floor(np.stack([pts @ e1, pts @ e2], axis=1) / p.cell_mm).astype(np.int64)
    ij -= ij.min(axis=0)
    cell = _dense_rank(ij[:, 0] * (int(ij[:, 1].max()) + 1) + ij[:, 1])
    cell_r, t_r, med = _cell_frame_medians(cell.ravel().astype(np.int64), stamps, pts @ axis)
    # One row per visit of a cell (its frames of one pass, no gap above visit_gap_s):
    # within a visit the probe's position and the time advance together, so frame rows
    # would let the fit explain the bone's slope across the cell as breathing velocity.
    by = np.lexsort((t_r, cell_r))
    cell_r, t_r, med = cell_r[by], t_r[by], med[by]
    new = np.r_[True, (cell_r[1:] != cell_r[:-1]) | (np.diff(t_r) > p.visit_gap_s)]
    visit = np.cumsum(new) - 1
    n = np.bincount(visit)
    cell_v = cell_r[new]
    t_v = np.bincount(visit, t_r) / n
    h_v = np.bincount(visit, med) / n
    tmin = np.full(int(cell_v.max()) + 1, np.inf)
    tmax = np.full(len(tmin), -np.inf)
    np.minimum.at(tmin, cell_v, t_v)
    np.maximum.at(tmax, cell_v, t_v)
    keep = (tmax - tmin)[cell_v] >= p.min_span_s
    if keep.sum() < 10:
        return None
    _, cell_k = np.unique(cell_v[keep], return_inverse=True)
    return cell_k.ravel(), t_v[keep], h_v[keep], n[keep].astype(np.float64)


def _cell_frame_medians(
    cell: np.ndarray, stamps: np.ndarray, h: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The median height of each (cell, frame) group of points.

    Args:
        cell: (N,) int64 cell of each point; stamps: (N,) frame stamps, ns; h: (N,) heights.

    Returns:
        cell (G,), time (G,) s from the first stamp, median (G,) mm of each group: the
        middle of its heights sorted ascending (the upper one of an even count). Rows in
        any order (the caller sorts them).
    """
    distinct, frame = _frames(stamps)
    t_frame = (distinct - stamps.min()) * 1e-9
    if len(stamps) and np.all(stamps[1:] >= stamps[:-1]):
        # A sweep's points come frame after frame: each frame's few hundred points are
        # grouped on their own, which costs a fraction of one sort of all of them.
        starts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1], True])
        rows_cell = np.empty(len(cell), dtype=np.int64)
        rows_frame = np.empty(len(cell), dtype=np.int64)
        rows_med = np.empty(len(cell), dtype=np.float64)
        n = _frame_median_kernel()(
            cell, np.ascontiguousarray(h, dtype=np.float64), starts, rows_cell, rows_frame, rows_med
        )
        return rows_cell[:n], t_frame[rows_frame[:n]], rows_med[:n]
    key = cell * (int(frame.max()) + 1) + frame.ravel()
    order = _by_key_then_height(key, h)  # a group's middle is its median
    key_s = key[order]
    first = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]])
    counts = np.diff(np.r_[first, len(key_s)])
    return cell[order][first], t_frame[frame[order][first]], h[order][first + counts // 2]


@functools.cache
def _frame_median_kernel():
    """Compiled on first use (importing Numba costs a third of a second that a node's
    start-up need not pay): the grouped medians of :func:`_cell_frame_medians` for points
    stored frame after frame."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(cell, h, starts, out_cell, out_frame, out_med):  # pragma: no cover - compiled
        # a frame's points bucketed by cell (a counting sort), each bucket (a handful of
        # points) sorted by insertion: no sort of the whole frame
        count = np.zeros(cell.max() + 1, dtype=np.int64)  # per cell; zero between frames
        offset = np.zeros(cell.max() + 1, dtype=np.int64)
        longest = np.max(starts[1:] - starts[:-1]) if len(starts) > 1 else 0
        cells = np.empty(longest, dtype=np.int64)
        buf = np.empty(longest, dtype=h.dtype)
        n_out = 0
        for f in range(len(starts) - 1):
            a, b = starts[f], starts[f + 1]
            n_cells = 0
            for i in range(a, b):
                c = cell[i]
                if count[c] == 0:
                    cells[n_cells] = c
                    n_cells += 1
                count[c] += 1
            end = 0
            for q in range(n_cells):
                c = cells[q]
                offset[c] = end
                end += count[c]
                count[c] = 0  # refilled while placing
            for i in range(a, b):
                c = cell[i]
                pos = offset[c] + count[c]
                count[c] += 1
                v = h[i]
                while pos > offset[c] and buf[pos - 1] > v:
                    buf[pos] = buf[pos - 1]
                    pos -= 1
                buf[pos] = v
            for q in range(n_cells):
                c = cells[q]
                out_cell[n_out], out_frame[n_out] = c, f
                out_med[n_out] = buf[offset[c] + count[c] // 2]
                n_out += 1
                count[c] = 0
        return n_out

    return kernel


def warm_up() -> None:
    """Load (or compile) the per-frame grouping now: its first call costs about half a
    second, which should not fall into the first sweep's end."""
    one = np.zeros(2, dtype=np.int64)
    _frame_median_kernel()(one, np.zeros(2), np.array([0, 2]), one.copy(), one.copy(), np.zeros(2))


def _by_key_then_height(key: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Indices ordering (N,) int keys >= 0, then (N,) heights within a key: ``np.lexsort((h,
    key))`` up to the order of equal heights in one group (which leaves every group's
    median and stamp alone). One int64 sort of ``key * N + rank(h)``: a two-key lexsort
    of a 60 Hz sweep's ~8e5 points took ~5x longer."""
    n = len(key)
    if n == 0 or int(key.max()) >= np.iinfo(np.int64).max // n:
        return np.lexsort((h, key))
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(h)] = np.arange(n)
    return np.argsort(key.astype(np.int64) * n + rank)


def _dense_rank(keys: np.ndarray) -> np.ndarray:
    """(N,) rank of each of ``keys`` (N,) ints >= 0 among their distinct values, as
    ``np.unique(keys, return_inverse=True)[1]`` gives it, by a table over the key range
    instead of a sort (a sweep's ~10^6 points fall in ~10^4 cells of a small grid)."""
    if int(keys.max()) > 16 * len(keys):  # a sparse range (stray points): sort after all
        return np.unique(keys, return_inverse=True)[1].ravel()
    present = np.zeros(int(keys.max()) + 1, dtype=np.int64)
    present[keys] = 1
    return (np.cumsum(present) - 1)[keys]


def _frames(stamps_ns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct stamps (M,) ascending and the index of each of ``stamps_ns`` (N,) into
    them, as ``np.unique(stamps_ns, return_inverse=True)``; without a sort when the stamps
    are in order already (a sweep's points are stored frame after frame)."""
    if len(stamps_ns) and np.all(stamps_ns[1:] >= stamps_ns[:-1]):
        new = np.r_[True, stamps_ns[1:] != stamps_ns[:-1]]
        return stamps_ns[new], np.cumsum(new) - 1
    distinct, index = np.unique(stamps_ns, return_inverse=True)
    return distinct, index.ravel()


def _demean(v: np.ndarray, cell: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    mean = np.bincount(cell, w * v, n) / np.bincount(cell, w, n)
    return v - mean[cell]


def _demean_cols(X: np.ndarray, cell: np.ndarray, w: np.ndarray, n: int) -> np.ndarray:
    return np.stack([_demean(X[:, j], cell, w, n) for j in range(X.shape[1])], axis=1)


def _weighted_lstsq(X: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    sw = np.sqrt(w)
    # rcond: a term the visit times cannot tell apart (a harmonic commensurate with the
    # pass timing) gets no weight instead of an unbounded one
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=1e-6)
    r = y - X @ coef
    return coef, float(np.sum(w * r**2))


def _irls(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, huber_mm: float, iterations: int = 5
) -> tuple[np.ndarray, float]:
    """Huber-weighted least squares (weights ``w`` times the Huber weights)."""
    coef, res = _weighted_lstsq(X, y, w)
    for _ in range(iterations):
        r = np.abs(y - X @ coef)
        hub = np.where(r <= huber_mm, 1.0, huber_mm / np.maximum(r, 1e-12))
        coef, res = _weighted_lstsq(X, y, w * hub)
    return coef, res
