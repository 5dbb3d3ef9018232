"""US-only level split: spinous-process peaks along the cranio-caudal axis.

Used when no X-ray is available. The posterior-most US points near the midline trace
the spinous processes; their tips are the peaks of that profile along the sweep's
cranio-caudal axis (OBB axis 1). With one peak per expected level, each body centroid
is placed at a typical offset from its tip (fitted on phantom spines) and the points
are split exactly as with X-ray centroids. When the profile does not give that many
peaks, the cranio-caudal extent is cut into equal parts (lumbar vertebrae have similar
heights, ~36 mm body + disc), the documented weakest fallback. The caller supplies
which way is cranial and which way the probe looks: the robot and the sweep plan know
both; the points alone cannot tell up from down. Frames: robot base, mm.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from usx_model.ingest.xray_points import obb_axes
from usx_model.levels.split import _unit, split_levels_xray

#: Typical lumbar level pitch (body height + disc), mm: the peak-spacing prior.
TYPICAL_PITCH_MM = 36.0
#: Spinous tip minus body centroid along the sweep's cranial axis, L1..L5, mm, and the
#: body centroid's depth along the probe axis from the sweep cloud's centroid, mm.
#: Means over phantom seeds 6000-6029 (the 27 with five peaks; sd 1.4-3.1 mm): the tips
#: sit caudal of their bodies, less so towards L5 where lordosis tilts the processes
#: (refit with :func:`usx_model.evaluation.levels.fit_tip_offsets`).
TIP_TO_BODY_CRANIAL_MM = (-21.4, -17.4, -11.2, -5.6, 3.3)
BODY_DEPTH_MM = (-31.0, -36.2, -39.1, -38.3, -33.1)


def spinous_peaks(
    points_mm: np.ndarray,
    cranial: np.ndarray,
    towards_probe: np.ndarray,
    midline_halfwidth_mm: float = 8.0,
    bin_mm: float = 2.0,
    max_peaks: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cranio-caudal positions of the spinous tips (posterior-most midline points).

    Args:
        points_mm: (N, 3) US bone points, base frame.
        cranial: (3,) direction towards the head, base frame (approximate).
        towards_probe: (3,) direction from the spine to the probe (posterior).
        midline_halfwidth_mm: half width of the midline strip searched.
        bin_mm: profile bin along the cranio-caudal axis.
        max_peaks: keep at most this many peaks, the most prominent ones.

    Returns:
        (tip positions along the cranial axis sorted cranial first (K,), the axes
        (3, 3) rows = cranial, lateral, posterior, and the midline point (3,)).
    """
    p = np.asarray(points_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 4:
        raise ValueError(f"expected points_mm as (N, 3) float points with N >= 4, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points_mm contains non-finite values")
    up_hint, post_hint = _unit(cranial, "cranial"), _unit(towards_probe, "towards_probe")
    axes, c = obb_axes(p)
    # OBB axis 1 is cranio-caudal; depth is whichever other axis best matches the probe
    up = axes[0] * np.sign(axes[0] @ up_hint)
    post = axes[1 + int(np.argmax(np.abs(axes[1:] @ post_hint)))]
    post = post * np.sign(post @ post_hint)
    lat = np.cross(post, up)
    q = p - c
    s_up, s_lat, s_post = q @ up, q @ lat, q @ post
    lo_l, hi_l = np.quantile(s_lat, [0.02, 0.98])
    mid_lat = 0.5 * (lo_l + hi_l)
    strip = np.abs(s_lat - mid_lat) <= midline_halfwidth_mm
    lo, hi = np.quantile(s_up, [0.005, 0.995])
    edges = np.arange(lo, hi + bin_mm, bin_mm)
    which = np.digitize(s_up[strip], edges) - 1
    prof = np.full(len(edges) - 1, np.nan)
    for b in np.unique(which[(which >= 0) & (which < len(prof))]):
        prof[b] = np.quantile(s_post[strip][which == b], 0.95)
    filled = np.where(np.isnan(prof), np.nanmin(prof) if np.any(~np.isnan(prof)) else 0.0, prof)
    smooth = ndimage.gaussian_filter1d(filled, 1.5)
    # imported here: scipy.signal (with scipy.stats) adds most of a second to the start of
    # every node that imports this module, and a node restarted after a crash waits for it
    from scipy import signal

    peaks, props = signal.find_peaks(
        smooth, distance=max(1, int(0.6 * TYPICAL_PITCH_MM / bin_mm)), prominence=3.0
    )
    if max_peaks is not None and len(peaks) > max_peaks:
        # extra bumps (a transverse process edge, noise) are less prominent than tips
        peaks = peaks[np.sort(np.argsort(props["prominences"])[::-1][:max_peaks])]
    centres = 0.5 * (edges[:-1] + edges[1:])
    tips = np.sort(centres[peaks])[::-1]
    return tips, np.stack([up, lat, post]), c + mid_lat * lat


def body_centroids_from_tips(
    points_mm: np.ndarray,
    tips: np.ndarray,
    axes: np.ndarray,
    centre: np.ndarray,
    levels: tuple[int, ...],
) -> dict[int, np.ndarray]:
    """Expected body centroids from the spinous tips (typical tip-to-body offsets).

    Args:
        points_mm: (N, 3) the sweep's points (their centroid anchors the depth offsets).
        tips, axes, centre: the output of :func:`spinous_peaks`, one tip per level.
        levels: the levels of the tips, cranial first.

    Returns:
        level -> (3,) body centroid estimate, base frame.
    """
    if len(tips) != len(levels):
        raise ValueError(f"expected one spinous tip per level ({len(levels)}), got {len(tips)}")
    c = np.asarray(points_mm, dtype=np.float64).mean(axis=0)
    lateral = (np.asarray(centre) - c) @ axes[1]
    return {
        lv: c
        + (tip - TIP_TO_BODY_CRANIAL_MM[lv - 1]) * axes[0]
        + lateral * axes[1]
        + BODY_DEPTH_MM[lv - 1] * axes[2]
        for lv, tip in zip(levels, tips, strict=True)
    }


def split_levels_us_only(
    points_mm: np.ndarray,
    cranial: np.ndarray,
    towards_probe: np.ndarray,
    levels: tuple[int, ...] = (1, 2, 3, 4, 5),
) -> np.ndarray:
    """Level of every point from the US sweep alone.

    With one spinous tip per level, the body centroids are estimated from the tips
    (:func:`body_centroids_from_tips`) and the points split as with an X-ray
    (:func:`usx_model.levels.split.split_levels_xray`); otherwise the cranio-caudal
    extent is cut into ``len(levels)`` equal parts.

    Args:
        points_mm: (N, 3) US bone points of a sweep covering ``levels``, base frame.
        cranial: (3,) direction towards the head (approximate), base frame.
        towards_probe: (3,) direction from the spine towards the probe (posterior).
        levels: the levels the sweep covers, cranial to caudal.

    Returns:
        (N,) int8 levels (0: outside every level's box, tip-based split only).
    """
    if (
        not levels
        or list(levels) != sorted(levels)
        or any(lv not in (1, 2, 3, 4, 5) for lv in levels)
    ):
        raise ValueError(f"expected ascending levels within 1..5, got {levels}")
    p = np.asarray(points_mm, dtype=np.float64)
    k = len(levels)
    tips, axes, centre = spinous_peaks(p, cranial, towards_probe, max_peaks=k)
    if len(tips) == k and k >= 2:
        centroids = body_centroids_from_tips(p, tips, axes, centre, levels)
        return split_levels_xray(p, centroids, axes[1])
    s_up = (p - centre) @ axes[0]
    lo, hi = np.quantile(s_up, [0.005, 0.995])
    bounds = hi - (hi - lo) * np.arange(1, k) / k
    idx = np.sum(s_up[:, None] < bounds[None, :], axis=1)
    return np.asarray(levels, dtype=np.int8)[idx]
