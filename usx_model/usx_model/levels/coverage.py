"""Per-level coverage of a sweep: how much of each vertebra's posterior surface the probe saw.

The lateral X-ray's vertebral bodies, placed in the base frame, give the spine's axis and
one band along it per level, from its body centroid towards the neighbours' (see
:func:`level_bands`). A level's expected US-visible surface is
its band times a window of ``half_width_mm`` either side of the midline (laminae, facets,
spinous process; the transverse processes lie deeper and mostly in shadow), cut in cells of
``cell_mm``. Its coverage is the fraction of those cells that hold a bone point so far.
Bone does not fill the whole window (the interlaminar gaps), so a complete sweep ends
below 1; the criterion a level must meet is set on phantom sweeps (docs/results.md).

The midline is the X-ray's placement plane when its depth is registered (CBCT); otherwise
it is estimated from the bone points themselves (the median of their lateral coordinates),
which is biased while only one side has been swept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from usx_model.base.points import check_points
from usx_model.base.xray_geometry import XrayGeometry
from usx_model.ingest.xray_points import LateralPlane, lateral_plane_along, place_xray_labels

#: Lateral range of the histogram either side of the frame's origin, mm.
_LATERAL_RANGE_MM = 80.0
#: Bone points needed to place an X-ray without a registered depth.
MIN_PLANE_POINTS = 200


class LateralShot(Protocol):
    """What the bands need of a lateral X-ray (``completion.xray_placement.XrayObservation``
    has it): body labels, geometry, pose in the base frame, registered plane point or None."""

    label: np.ndarray
    geometry: XrayGeometry
    T_base_xray: np.ndarray
    plane_point_mm: np.ndarray | None


@dataclass(frozen=True)
class LevelBands:
    """The spine's axis and each level's band along it, base frame, mm.

    Attributes:
        origin_mm: (3,) mean of the body centroids (on the placement plane).
        axis: (3,) unit cranial direction (L5 -> L1), normal to ``lateral``.
        lateral: (3,) unit lateral direction (the X-ray beam).
        bands: level -> (lo, hi) along ``axis`` from the origin, mm.
        midline_known: the origin lies on the mid-sagittal plane (registered depth).
    """

    origin_mm: np.ndarray
    axis: np.ndarray
    lateral: np.ndarray
    bands: dict[int, tuple[float, float]]
    midline_known: bool


#: A level's band from its body centroid, in spacings to the neighbouring centroid below
#: and above: the posterior elements slope caudally. Phantom sweeps (seeds 101-103) see a
#: level's bone between -0.99..-0.43 and +0.46..+0.80 spacings (2 and 98 % quantiles).
BAND_BELOW, BAND_ABOVE = 0.75, 0.4


def level_bands(
    bodies_mm: dict[int, np.ndarray], lateral: np.ndarray, midline_known: bool = True
) -> LevelBands:
    """Bands from placed vertebral-body points (level -> (N, 3), base frame, mm).

    A level's band reaches :data:`BAND_BELOW` of the spacing to the next centroid below and
    :data:`BAND_ABOVE` of the spacing to the one above (the end levels use their one
    neighbour's spacing); neighbouring bands overlap, as the arches do.

    Raises:
        ValueError: fewer than two levels, an empty level, or a lateral direction along
            the spine.
    """
    levels = sorted(bodies_mm)
    if len(levels) < 2:
        raise ValueError(f"expected the bodies of at least two levels, got {levels}")
    centroids = np.array([check_points(bodies_mm[lv], f"L{lv} body", 1).mean(0) for lv in levels])
    lat = np.asarray(lateral, dtype=np.float64)
    lat = lat / np.linalg.norm(lat)
    origin = centroids.mean(0)
    _, _, vt = np.linalg.svd(centroids - origin)
    axis = vt[0] - (vt[0] @ lat) * lat
    if np.linalg.norm(axis) < 1e-6:
        raise ValueError("the lateral direction runs along the spine")
    axis /= np.linalg.norm(axis)
    if (centroids[0] - centroids[-1]) @ axis < 0:  # the lowest level number is cranial
        axis = -axis
    t = (centroids - origin) @ axis  # decreasing: levels[0] is cranial
    gaps = t[:-1] - t[1:]
    above = np.concatenate([[gaps[0]], gaps])  # spacing to the level above (L1: to L2)
    below = np.concatenate([gaps, [gaps[-1]]])
    lower, upper = t - BAND_BELOW * below, t + BAND_ABOVE * above
    bands = {lv: (float(lo), float(hi)) for lv, lo, hi in zip(levels, lower, upper, strict=True)}
    return LevelBands(origin, axis, lat, bands, midline_known)


def bands_from_xray(xray: LateralShot, bone_points_mm: np.ndarray | None = None) -> LevelBands:
    """Bands from a lateral X-ray: its label rays cut with the registered plane (CBCT depth),
    or, without one, with the paper's heuristic plane through the middle of the US bone
    points' lateral extent (``bone_points_mm``, base frame; a few hundred suffice: the
    plane's depth scales the bands only by its error over the source distance).

    Raises:
        ValueError: no registered depth and no bone points; bad labels or geometry.
    """
    T = np.asarray(xray.T_base_xray, dtype=np.float64)
    g = xray.geometry
    normal = T[:3, :3] @ g.normal
    normal /= np.linalg.norm(normal)
    if xray.plane_point_mm is not None:
        point = np.asarray(xray.plane_point_mm, dtype=np.float64)
    elif bone_points_mm is not None and len(bone_points_mm) >= MIN_PLANE_POINTS:
        point = lateral_plane_along(check_points(bone_points_mm, "bone points"), normal).point_mm
    else:
        raise ValueError(
            "the X-ray's depth is not registered: its level bands need at least "
            f"{MIN_PLANE_POINTS} bone points"
        )
    plane = LateralPlane(point, normal, np.eye(3), np.full(3, np.nan))
    bodies = place_xray_labels(xray.label, g, T, plane)
    return level_bands(bodies, normal, midline_known=xray.plane_point_mm is not None)


class LevelCoverage:
    """Occupied cells per level, updated with each frame's bone points.

    Args:
        bands: from :func:`level_bands` or :func:`bands_from_xray`.
        cell_mm: cell size along the axis and laterally.
        half_width_mm: half the width of the expected surface about the midline.
    """

    def __init__(self, bands: LevelBands, cell_mm: float = 2.0, half_width_mm: float = 20.0):
        if not (cell_mm > 0 and half_width_mm > cell_mm):
            raise ValueError(
                f"expected 0 < cell_mm < half_width_mm, got {cell_mm}, {half_width_mm}"
            )
        self.bands = bands
        self.cell_mm = float(cell_mm)
        self.half_width_mm = float(half_width_mm)
        self._n_lat = int(np.ceil(2 * _LATERAL_RANGE_MM / cell_mm))
        self._hits: dict[int, np.ndarray] = {}
        for lv, (lo, hi) in bands.bands.items():
            self._hits[lv] = np.zeros((max(1, int(np.ceil((hi - lo) / cell_mm))), self._n_lat))
        self._lateral_counts = np.zeros(self._n_lat)  # all bone points, for the midline
        self._points = dict.fromkeys(bands.bands, 0)  # bone points in each band so far

    def add(self, points_mm: np.ndarray) -> None:
        """Bone points (N, 3), base frame, mm."""
        p = check_points(points_mm, "bone points")
        if len(p) == 0:
            return
        b = self.bands
        d = p - b.origin_mm
        along, lat = d @ b.axis, d @ b.lateral
        col = np.floor((lat + _LATERAL_RANGE_MM) / self.cell_mm).astype(np.int64)
        inside = (col >= 0) & (col < self._n_lat)
        np.add.at(self._lateral_counts, col[inside], 1.0)
        for lv, (lo, hi) in b.bands.items():
            sel = inside & (along >= lo) & (along < hi)
            if sel.any():
                self._points[lv] += int(sel.sum())
                row = np.minimum(
                    ((along[sel] - lo) / self.cell_mm).astype(np.int64), len(self._hits[lv]) - 1
                )
                self._hits[lv][row, col[sel]] = 1.0

    @property
    def midline_mm(self) -> float:
        """Lateral coordinate of the midline from the origin (0 when the depth is known)."""
        if self.bands.midline_known or not self._lateral_counts.any():
            return 0.0
        cdf = np.cumsum(self._lateral_counts)
        k = int(np.searchsorted(cdf, cdf[-1] / 2.0))
        return (k + 0.5) * self.cell_mm - _LATERAL_RANGE_MM

    def points(self) -> dict[int, int]:
        """level -> bone points added so far within its band (and the lateral range)."""
        return dict(self._points)

    def fractions(self) -> dict[int, float]:
        """level -> fraction of its expected surface cells seen so far (0..1)."""
        mid = self.midline_mm + _LATERAL_RANGE_MM
        c0 = max(0, round((mid - self.half_width_mm) / self.cell_mm))
        c1 = min(self._n_lat, round((mid + self.half_width_mm) / self.cell_mm))
        out = {}
        for lv, hits in self._hits.items():
            window = hits[:, c0:c1]
            out[lv] = float(window.mean()) if window.size else 0.0
        return out

    def box(self, level: int) -> tuple[np.ndarray, np.ndarray]:
        """A level's expected surface as a box: ``T_base_box`` (4, 4; x lateral, y along
        the spine, z posterior-anterior, centred on the window) and its size (3,), mm."""
        b = self.bands
        lo, hi = b.bands[level]
        T = np.eye(4)
        T[:3, :3] = np.column_stack([b.lateral, b.axis, np.cross(b.lateral, b.axis)])
        T[:3, 3] = b.origin_mm + b.axis * (lo + hi) / 2.0 + b.lateral * self.midline_mm
        return T, np.array([2.0 * self.half_width_mm, hi - lo, self.cell_mm])


def covered(fractions: dict[int, float], min_coverage: float) -> dict[int, bool]:
    """level -> whether its coverage meets the criterion ``min_coverage``."""
    return {lv: f >= min_coverage for lv, f in fractions.items()}
