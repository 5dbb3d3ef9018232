"""Per-level X-ray body labels -> 3D points in the robot base frame.

A lateral X-ray loses the left-right coordinate. Each labelled pixel (0 background,
1..5 = L1..L5 vertebral bodies) defines a ray from the source through the pixel centre;
the ray is mapped into the base frame with ``T_base_xray`` and cut with a sagittal
plane (US-X Complete, Sec. 2.3, places the X-ray points on the plane through the
vertebra's lateral middle):

- **with CBCT**: ``T_base_xray = T_base_cbct @ T_cbct_xray`` (device calibration and
  CBCT <-> US ICP) and the plane is the lateral mid-plane of the registered CBCT bone
  (:func:`lateral_plane_along` with the beam direction as the lateral axis);
- **without CBCT** (the paper's heuristic): the plane passes through the midpoint of the
  US segmentation's extent along the second axis of its oriented bounding box
  (:func:`lateral_plane_from_us`).

Oriented bounding box axes (principal axes of the US bone points, by decreasing
variance): for a lumbar sweep, axis 1 is cranio-caudal (five levels, ~180 mm), axis 2
lateral (transverse-process span, ~70-100 mm), axis 3 antero-posterior depth (spinous
tip to transverse processes, ~30-45 mm). This order was checked on the phantom spines
of ``registration.cases`` (``obb_axis_order_ok`` of
:func:`usx_model.evaluation.levels.evaluate_placement_and_split`). One plane for the whole
sweep cannot follow a scoliotic or axially rotated spine: :mod:`.symmetry` and
:mod:`.placement` refine it per vertebra.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.base.points import check_points
from usx_model.base.transforms import validate_transform
from usx_model.base.xray_geometry import XrayGeometry


@dataclass
class LateralPlane:
    """A sagittal placement plane, base frame, mm.

    Attributes:
        point_mm: (3,) a point on the plane (the lateral midpoint).
        normal: (3,) unit lateral axis (plane normal).
        axes: (3, 3) rows = oriented-bounding-box axes 1..3 (cranio-caudal, lateral,
            depth) when fitted to US points; the normal otherwise fills row 2.
        extents_mm: (3,) trimmed extents along those axes.
    """

    point_mm: np.ndarray
    normal: np.ndarray
    axes: np.ndarray
    extents_mm: np.ndarray


def _trimmed_mid(proj: np.ndarray, trim: float) -> tuple[float, float]:
    """(midpoint, extent) of 1D projections between the trim and 1 - trim quantiles."""
    lo, hi = np.quantile(proj, [trim, 1.0 - trim])
    return 0.5 * (lo + hi), hi - lo


def obb_axes(points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Principal axes (3, 3), rows by decreasing variance, and the centroid (3,)."""
    p = check_points(points_mm, "points_mm", 4)
    c = p.mean(axis=0)
    w, v = np.linalg.eigh(np.cov((p - c).T))
    return v[:, np.argsort(w)[::-1]].T, c


def lateral_plane_from_us(us_points_base_mm: np.ndarray, trim: float = 0.01) -> LateralPlane:
    """The paper's lateral placement: mid-extent of the US points along OBB axis 2.

    Args:
        us_points_base_mm: (N, 3) US bone segmentation points, base frame.
        trim: share of points ignored at each end of every extent (outliers).

    Returns:
        LateralPlane with the OBB axes.
    """
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must lie in [0, 0.5), got {trim}")
    axes, c = obb_axes(us_points_base_mm)
    p = check_points(us_points_base_mm, "us_points_base_mm", 1) - c
    mids, ext = zip(*(_trimmed_mid(p @ a, trim) for a in axes), strict=True)
    return LateralPlane(c + mids[1] * axes[1], axes[1].copy(), axes, np.asarray(ext))


def lateral_plane_along(points_mm: np.ndarray, axis: np.ndarray, trim: float = 0.0) -> LateralPlane:
    """Mid-extent plane of ``points_mm`` (e.g. registered CBCT bone) along a given axis."""
    p = check_points(points_mm, "points_mm", 1)
    n = np.asarray(axis, dtype=np.float64)
    if n.shape != (3,) or not np.all(np.isfinite(n)) or np.linalg.norm(n) == 0:
        raise ValueError(f"expected axis as a non-zero finite (3,) vector, got {axis}")
    n = n / np.linalg.norm(n)
    mid, ext = _trimmed_mid(p @ n, trim)
    c = p.mean(axis=0)
    point = c + (mid - c @ n) * n
    axes = np.full((3, 3), np.nan)
    axes[1] = n
    return LateralPlane(point, n, axes, np.array([np.nan, ext, np.nan]))


def place_xray_labels(
    label: np.ndarray,
    geometry: XrayGeometry,
    T_base_xray: np.ndarray,
    plane: LateralPlane | dict[int, LateralPlane],
) -> dict[int, np.ndarray]:
    """3D points of every labelled level: pixel rays cut with the placement plane.

    Args:
        label: (rows, cols) integer label image, 0 background, 1..5 = L1..L5 bodies.
        geometry: the shot's geometry in the X-ray frame (``label.shape == geometry.shape``).
        T_base_xray: (4, 4) pose of the X-ray frame in the base frame.
        plane: placement plane in the base frame, or one per level
            (:func:`per_level_planes`; a level without its own plane is an error).

    Returns:
        level -> (N_level, 3) float64 points, base frame, mm (levels present only).

    Raises:
        ValueError: wrong shape, labels outside 0..5, no labelled pixel, a bad
            transform, or rays (nearly) parallel to the plane.
    """
    lab = np.asarray(label)
    if lab.ndim != 2 or lab.shape != tuple(geometry.shape):
        raise ValueError(
            f"expected a label image of shape {tuple(geometry.shape)}, got {lab.shape}"
        )
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"expected an integer label image, got dtype {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > 5):
        raise ValueError(f"expected labels in 0..5 (L1..L5), got {lab.min()}..{lab.max()}")
    levels = [int(v) for v in np.unique(lab) if v != 0]
    if not levels:
        raise ValueError("X-ray label image has no labelled pixels (all background)")
    T = validate_transform(T_base_xray, "T_base_xray", atol=1e-5)
    planes = plane if isinstance(plane, dict) else dict.fromkeys(levels, plane)
    missing = [lv for lv in levels if lv not in planes]
    if missing:
        raise ValueError(f"no placement plane for labelled levels {missing}")
    beam = T[:3, :3] @ geometry.normal
    out = {}
    for lv in levels:
        n, p0 = np.asarray(planes[lv].normal, float), np.asarray(planes[lv].point_mm, float)
        if not (np.all(np.isfinite(n)) and np.all(np.isfinite(p0))):
            raise ValueError("placement plane has non-finite point or normal")
        if abs(beam @ n) < 0.2:  # > ~78 deg between beam and plane normal
            cos = abs(beam @ n)
            raise ValueError(
                f"X-ray beam is nearly parallel to the placement plane (|cos| = {cos:.2f})"
            )
        rows, cols = np.nonzero(lab == lv)
        o, d = geometry.rays(rows, cols)
        o = o @ T[:3, :3].T + T[:3, 3]
        d = d @ T[:3, :3].T
        t = ((p0 - o) @ n) / (d @ n)
        out[lv] = o + t[:, None] * d
    return out


def per_level_planes(
    us_points_base_mm: np.ndarray,
    centroids_mm: dict[int, np.ndarray],
    plane: LateralPlane,
    trim: float = 0.01,
) -> dict[int, LateralPlane]:
    """The lateral placement per vertebra: mid-extent of each level's slab of US points.

    A scoliotic spine shifts its bodies laterally level by level, which one plane for
    the whole sweep cannot follow. Each level's slab holds the US points within half
    the distance to the neighbouring centroids along the local cranio-caudal axis; the
    plane keeps ``plane.normal`` and moves to the slab's mid-extent along it.

    Args:
        us_points_base_mm: (N, 3) US bone points, base frame.
        centroids_mm: level -> (3,) first-pass X-ray body centroids (any lateral
            placement; only their cranio-caudal positions matter), >= 2 levels.
        plane: the whole-sweep plane (its normal is kept; its point is the fallback
            for a slab with fewer than 20 points).
        trim: share of points ignored at each end of a slab's extent.

    Returns:
        level -> LateralPlane.
    """
    p = check_points(us_points_base_mm, "us_points_base_mm", 1)
    levels = sorted(centroids_mm)
    if len(levels) < 2:
        raise ValueError(f"expected centroids of at least 2 levels, got {levels}")
    n = np.asarray(plane.normal, dtype=np.float64)
    c = np.array([np.asarray(centroids_mm[lv], dtype=np.float64) for lv in levels])
    out = {}
    for i, lv in enumerate(levels):
        a = c[max(i - 1, 0)] - c[min(i + 1, len(c) - 1)]
        a -= (a @ n) * n
        a /= np.linalg.norm(a)
        s = (p - c[i]) @ a
        up = 0.5 * (c[i - 1] - c[i]) @ a if i > 0 else 0.5 * (c[i] - c[i + 1]) @ a
        down = 0.5 * (c[i] - c[i + 1]) @ a if i < len(c) - 1 else up
        slab = p[(s <= up) & (s >= -down)]
        if len(slab) < 20:
            out[lv] = plane
            continue
        mid, ext = _trimmed_mid(slab @ n, trim)
        point = c[i] + (mid - c[i] @ n) * n
        out[lv] = LateralPlane(point, n.copy(), plane.axes, np.array([np.nan, ext, np.nan]))
    return out


def xray_chain(T_base_cbct: np.ndarray, T_cbct_xray: np.ndarray) -> np.ndarray:
    """``T_base_xray = T_base_cbct @ T_cbct_xray`` (ICP result x device calibration)."""
    a = validate_transform(T_base_cbct, "T_base_cbct", atol=1e-5)
    b = validate_transform(T_cbct_xray, "T_cbct_xray", atol=1e-5)
    return a @ b


def level_centroids(points_by_level: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """level -> (3,) centroid of that level's placed X-ray points."""
    return {lv: np.asarray(p, dtype=np.float64).mean(axis=0) for lv, p in points_by_level.items()}


def level_midplanes(
    points_by_level: dict[int, np.ndarray], lateral_axis: np.ndarray
) -> dict[int, LateralPlane] | None:
    """level -> the plane its placed X-ray points lie in, normal signed along lateral_axis.

    Placement cuts each level's label rays with that vertebra's mid-sagittal plane (or
    with the one registered plane), so the points *are* the plane: its normal is the
    direction of least spread (:func:`obb_axes`' third axis). None when a level's points
    do not span a plane (fewer than 4, or collinear), so callers fall back to measuring
    from the centroids. Only the normal is known, so the other axes are NaN (as in
    :func:`lateral_plane_along`).
    """
    lateral = np.asarray(lateral_axis, dtype=np.float64)
    out = {}
    for lv, pts in points_by_level.items():
        if len(pts) < 4:
            return None
        pcs, c = obb_axes(pts)  # rows by decreasing variance
        p = np.asarray(pts, dtype=np.float64)
        if np.ptp(p @ pcs[1]) <= 1e-6 * max(np.ptp(p @ pcs[0]), 1e-12):  # collinear
            return None
        n = pcs[2] if pcs[2] @ lateral >= 0 else -pcs[2]
        axes = np.full((3, 3), np.nan)
        axes[1] = n
        out[int(lv)] = LateralPlane(c, n, axes, np.full(3, np.nan))
    return out
