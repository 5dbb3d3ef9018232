"""Automatic, shadow-aware bone-surface segmentation of one B-mode frame.

After Foroughi et al. 2007 ("Ultrasound bone segmentation using dynamic programming"):
bone reflects almost all energy, so its surface is a bright ridge along the beam with an
acoustic shadow beneath, and it is continuous across neighbouring scanlines.

Image convention (``tracking.calibration``): u = column = lateral, v = row = depth,
pixel centres at integers; the beam runs down the columns. The result has at most one
bone pixel per column.

Pipeline (vectorised, the score compiled: ``_score.py``; about a millisecond of CPU for a
512 x 512 frame):

1. **Coarse grid**: every ``col_step``-th column and ``row_step``-th row, transposed so
   each scanline is contiguous in memory; all windows below are box means from one
   cumulative sum per scanline.
2. **Bone score** per coarse pixel = ridge x shadow, both in [0, 1]. ``s`` is the mean of
   the ``smooth_mm`` from the pixel down (about one echo). Ridge: how much ``s`` exceeds
   the larger of the means of ``ridge_mm`` above and below (a 1D Laplacian-like operator
   along the beam that needs the pixel to stand out on both sides, so a sector border
   over black does not count). Shadow: the share of the brightness in front of the pixel
   (``shadow_mm`` above) that is missing in the ``shadow_mm`` beneath (after a
   ``shadow_gap_mm`` gap for the echo itself). A bright soft-tissue layer has tissue, not
   shadow, beneath and scores ~0; the last bright ridge on a scanline is the one with
   darkness beneath. The first ``min_depth_mm`` (skin) and rows without enough image
   beneath for a shadow score 0.
3. **Candidates**: the ``n_candidates`` best separated peaks of the score per column.
4. **Dynamic programming** over the coarse columns (``dp.chain_decode``): states are the
   candidates plus "no bone"; a candidate costs ``min_score - score`` (so weak ones must
   be carried by their neighbours), a row change between neighbours costs
   ``smooth_per_mm`` per mm up to a ``jump_cost`` cap (walls and gaps), switching
   between bone and no bone costs ``switch_cost``.
5. **Full-resolution refinement**: every full-resolution column between two decoded
   coarse columns gets a row guess (linear interpolation when both ends found bone at
   similar depths, else the nearest end); the surface is the echo's **leading edge**,
   the first half-maximum crossing between tissue and echo level in a window around the
   guess, linearly interpolated to sub-pixel. The row reported is the first pixel of the
   echo (crossing + 0.5 px), the convention of the simulator's ground-truth masks (the
   first bone hit of each scanline); bone surfaces are conventionally placed at the
   leading edge of the echo, not its centre, as the echo trails behind the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.segmentation._score import score_scanlines
from usx_model.segmentation.dp import chain_decode
from usx_model.tracking.calibration import pixels_to_base


@dataclass(frozen=True)
class BoneSegParams:
    """Settings of the bone segmentation (lengths in mm, scores in [0, 1]).

    Attributes:
        pixel_mm: (lateral, depth) pixel size of the frame.
        col_step: coarse grid takes every col_step-th column.
        row_step: coarse grid takes every row_step-th row.
        smooth_mm: length of the box average along depth (about one echo).
        ridge_mm: reach of the ridge operator above and below a pixel.
        shadow_gap_mm: skipped length below a pixel (the echo itself) before the shadow.
        shadow_mm: length of the shadow window.
        n_candidates: candidates per coarse column.
        min_score: score at which a lone candidate is as likely bone as not.
        smooth_per_mm: DP cost per mm of depth change between neighbouring coarse columns.
        jump_cost: DP cost cap of a depth change (a wall or a gap between two bones).
        switch_cost: DP cost of switching between bone and no bone.
        min_depth_mm: no bone is sought shallower than this (skin and the probe's near
            field: the bright skin line over dark fat mimics a small shadowed ridge).
        interp_mm: largest depth change across which coarse rows are interpolated.
        search_mm: (above, below) reach of the edge search around the coarse guess.
        min_edge: smallest echo-over-tissue contrast (grey levels) accepted as an edge.
    """

    pixel_mm: tuple[float, float] = (0.15, 0.15)
    col_step: int = 4
    row_step: int = 2
    smooth_mm: float = 0.6
    ridge_mm: float = 1.2
    shadow_gap_mm: float = 1.2
    shadow_mm: float = 6.0
    n_candidates: int = 2
    min_score: float = 0.12
    smooth_per_mm: float = 0.05
    jump_cost: float = 0.25
    switch_cost: float = 0.15
    min_depth_mm: float = 3.0
    interp_mm: float = 1.5
    search_mm: tuple[float, float] = (1.5, 1.0)
    min_edge: float = 30.0

    def validate(self) -> None:
        """Raise ValueError on out-of-range settings."""
        if len(self.pixel_mm) != 2 or not all(np.isfinite(p) and p > 0 for p in self.pixel_mm):
            raise ValueError(f"pixel_mm must be 2 positive numbers, got {self.pixel_mm}")
        for name in ("col_step", "row_step", "n_candidates"):
            value = getattr(self, name)
            if not (isinstance(value, int | np.integer) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("smooth_mm", "ridge_mm", "shadow_mm", "interp_mm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in (
            "shadow_gap_mm",
            "min_depth_mm",
            "smooth_per_mm",
            "jump_cost",
            "switch_cost",
            "min_edge",
        ):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if len(self.search_mm) != 2 or min(self.search_mm) < 0:
            raise ValueError(f"search_mm must be 2 numbers >= 0, got {self.search_mm}")


@dataclass
class BoneSegmentation:
    """Bone surface found in one frame (at most one pixel per column).

    Attributes:
        u_px: (K,) float64 column of each bone pixel (integer-valued), increasing.
        v_px: (K,) float64 sub-pixel row of the surface (first pixel of the echo).
        confidence: (K,) float64 in [0, 1], the bone score of the coarse detection.
        shape: (rows, cols) of the frame.
    """

    u_px: np.ndarray
    v_px: np.ndarray
    confidence: np.ndarray
    shape: tuple[int, int]

    @property
    def uv_px(self) -> np.ndarray:
        """(K, 2) float64 pixel positions (u, v)."""
        return np.stack([self.u_px, self.v_px], axis=1)

    def to_mask(self) -> np.ndarray:
        """(rows, cols) bool mask with the nearest pixel of each bone point set."""
        mask = np.zeros(self.shape, dtype=bool)
        v = np.clip(np.rint(self.v_px).astype(np.int64), 0, self.shape[0] - 1)
        mask[v, self.u_px.astype(np.int64)] = True
        return mask

    def to_base(
        self,
        T_base_pixel: np.ndarray,
        min_confidence: float = 0.0,
        columns: np.ndarray | None = None,
    ) -> np.ndarray:
        """(K', 3) float64 base-frame points (mm) of the bone pixels at or above a confidence.

        Args:
            T_base_pixel: (4, 4) pixel -> base affine of this frame
                (``tracking.calibration.base_pixel_transform``).
            min_confidence: keep only points with at least this confidence.
            columns: (cols,) bool, keep only points in these columns (None: all).
        """
        keep = self.confidence >= min_confidence
        if columns is not None:
            columns = np.asarray(columns, dtype=bool)
            if columns.shape != (self.shape[1],):
                raise ValueError(
                    f"expected a ({self.shape[1]},) bool column mask, got {columns.shape}"
                )
            keep &= columns[self.u_px.astype(np.int64)]
        return pixels_to_base(self.uv_px[keep], T_base_pixel)


def _check_image(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected a (rows, cols) uint8 B-mode image, got {img.dtype} {img.shape}")
    if min(img.shape) < 8:
        raise ValueError(f"expected an image of at least 8 x 8 pixels, got {img.shape}")
    return img


def bone_score(image: np.ndarray, params: BoneSegParams | None = None) -> np.ndarray:
    """Coarse bone score (ridge x shadow) of a frame, scanline-major.

    Args:
        image: (rows, cols) uint8 frame.
        params: settings.

    Returns:
        (ceil(cols / col_step), ceil(rows / row_step)) float32 scores in [0, 1]:
        [coarse column, coarse row] of pixel (u = c * col_step, v = r * row_step).
    """
    p = params or BoneSegParams()
    img = _check_image(image)
    # scanline-major: each coarse column contiguous along depth
    coarse = img[:: p.row_step, :: p.col_step].T
    dz = p.pixel_mm[1] * p.row_step
    m = max(1, round(p.smooth_mm / dz))  # about one echo long, from the pixel down
    k = max(1, round(p.ridge_mm / dz))
    gap = max(m, round(p.shadow_gap_mm / dz))
    w = max(1, round(p.shadow_mm / dz))
    # no bone in the skin; a shadow needs a quarter of its window inside the image
    n_rows = coarse.shape[1]
    return score_scanlines(
        coarse, m, k, gap, w, round(p.min_depth_mm / dz), max(0, n_rows - w // 4 - gap)
    )


def warm_up() -> None:
    """Load (or compile) the score's kernel now: its first call costs about half a second
    (seconds when it compiles), which a node's first frames should not pay."""
    segment_bone(np.zeros((16, 16), np.uint8))


def _candidates(score: np.ndarray, n: int, exclude: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and scores (C, n) of the n best peaks of each coarse column.

    Each next candidate is the best row farther than ``exclude`` rows from the ones
    before (cheaper than finding all local maxima); a column without positive score
    yields score 0. ``score`` is overwritten (zeroed around the picked rows).
    """
    s = score
    rows = np.empty((s.shape[0], n), dtype=np.int64)
    vals = np.empty((s.shape[0], n), dtype=np.float32)
    cols = np.arange(s.shape[0])[:, None]
    near = np.arange(-exclude, exclude + 1)[None, :]
    for j in range(n):
        best = np.argmax(s, axis=1)
        rows[:, j] = best
        vals[:, j] = s[cols[:, 0], best]
        if j + 1 < n:
            s[cols, np.clip(best[:, None] + near, 0, s.shape[1] - 1)] = 0.0
    return rows, np.maximum(vals, 0.0)


def _decode(rows: np.ndarray, scores: np.ndarray, p: BoneSegParams) -> np.ndarray:
    """DP over coarse columns: chosen candidate index per column, -1 for no bone.

    Columns without any candidate can only be "no bone", so the chain is cut to the span
    of columns with candidates plus one such column on either side (keeping the cost
    of switching into and out of bone there): the same optimum, decoded cheaper.
    """
    n = rows.shape[1]
    state = np.full(rows.shape[0], -1, dtype=np.int64)
    active = np.flatnonzero(scores.max(axis=1) > 0)
    if len(active) == 0:
        return state
    span = slice(max(0, active[0] - 1), min(rows.shape[0], active[-1] + 2))
    rows, scores = rows[span], scores[span]
    dz = p.pixel_mm[1] * p.row_step
    unary = np.zeros((len(rows), n + 1))
    # an empty candidate (score 0) is never better than no bone
    unary[:, :n] = np.where(scores > 0, p.min_score - scores, np.inf)
    pair = np.full((len(rows) - 1, n + 1, n + 1), p.switch_cost)
    dmm = np.abs(rows[:-1, :, None] - rows[1:, None, :]) * dz
    pair[:, :n, :n] = np.minimum(p.smooth_per_mm * dmm, p.jump_cost)
    pair[:, n, n] = 0.0
    decoded = chain_decode(unary, pair)
    state[span] = np.where(decoded < n, decoded, -1)
    return state


def segment_bone(image: np.ndarray, params: BoneSegParams | None = None) -> BoneSegmentation:
    """Bone surface of one B-mode frame: at most one sub-pixel row per column.

    Args:
        image: (rows, cols) uint8 B-mode frame (row = depth, column = lateral).
        params: settings; ``pixel_mm`` must match the frame.

    Returns:
        BoneSegmentation (empty when no bone is found).

    Raises:
        ValueError: on a non-uint8 or non-2D image, or one smaller than 8 x 8.
    """
    p = params or BoneSegParams()
    p.validate()
    img = _check_image(image)
    n_rows, n_cols = img.shape
    score = bone_score(img, p)
    exclude = max(1, round(p.ridge_mm / (p.pixel_mm[1] * p.row_step)))
    rows, scores = _candidates(score, p.n_candidates, exclude)
    state = _decode(rows, scores, p)
    found = state >= 0
    empty = np.zeros(0)
    if not found.any():
        return BoneSegmentation(empty, empty, empty, (n_rows, n_cols))
    pick = np.where(found, state, 0)[:, None]
    coarse_v = np.take_along_axis(rows, pick, axis=1)[:, 0] * float(p.row_step)
    coarse_conf = np.take_along_axis(scores, pick, axis=1)[:, 0]
    u, v_guess, conf = _full_res_guess(coarse_v, coarse_conf, found, n_cols, p)
    u, v, conf = _refine_edges(img, u, v_guess, conf, p)
    return BoneSegmentation(u, v, conf, (n_rows, n_cols))


def _full_res_guess(
    coarse_v: np.ndarray, conf: np.ndarray, found: np.ndarray, n_cols: int, p: BoneSegParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row guess for every full-resolution column near a decoded coarse column.

    Columns between two found coarse columns at similar depth are interpolated; otherwise
    each column takes its nearest coarse column (if that one found bone).
    """
    u = np.arange(n_cols)
    left = np.minimum(u // p.col_step, len(found) - 1)
    right = np.minimum(left + 1, len(found) - 1)
    frac = (u - left * p.col_step) / p.col_step
    nearest = np.where(frac <= 0.5, left, right)
    both = found[left] & found[right]
    close = np.abs(coarse_v[right] - coarse_v[left]) * p.pixel_mm[1] <= p.interp_mm
    interp = both & close
    v = np.where(interp, (1 - frac) * coarse_v[left] + frac * coarse_v[right], coarse_v[nearest])
    c = np.where(interp, (1 - frac) * conf[left] + frac * conf[right], conf[nearest])
    keep = interp | found[nearest]
    return u[keep], v[keep], c[keep]


def _refine_edges(
    img: np.ndarray, u: np.ndarray, v_guess: np.ndarray, conf: np.ndarray, p: BoneSegParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leading edge of the echo near each guess, sub-pixel; drops columns without an edge.

    In a window along the column: echo level E = brightest two-pixel mean, tissue level
    T = mean of the window's first rows (in front of the echo), and the edge is the first
    crossing of (E + T) / 2 by two consecutive pixels (a lone bright speckle pixel does not
    count), linearly interpolated between the pixels on either side. A sharp step from
    row r - 1 to row r crosses at r - 0.5; the first echo pixel is the crossing + 0.5.
    """
    n_rows = img.shape[0]
    up = round(p.search_mm[0] / p.pixel_mm[1])
    down = round(p.search_mm[1] / p.pixel_mm[1])
    offs = np.arange(-up - 1, down + 2)
    rr = np.clip(np.rint(v_guess).astype(np.int64)[:, None] + offs[None, :], 0, n_rows - 1)
    col = img[rr, u[:, None]].astype(np.float32)
    echo = np.max(col[:, :-1] + col[:, 1:], axis=1) * 0.5
    tissue = np.mean(col[:, :4], axis=1)
    mid = 0.5 * (echo + tissue)
    bright = col >= mid[:, None]
    pair = bright[:, 1:-1] & bright[:, 2:]  # pair[:, m] starts at row index m + 1
    first = 1 + np.argmax(pair, axis=1)
    i = np.arange(len(u))
    lo, hi = col[i, first - 1], col[i, first]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.clip(np.where(hi > lo, (mid - lo) / (hi - lo), 0.5), 0.0, 1.0)
    v = rr[i, first] - 0.5 + frac
    keep = pair.any(axis=1) & (echo - tissue >= p.min_edge)
    return u[keep].astype(np.float64), v[keep].astype(np.float64), conf[keep].astype(np.float64)
