"""Cut US bone points into vertebra levels L1..L5.

**With X-ray** (:func:`split_levels_xray`): the placed X-ray body centroids (base frame)
define the spine's local cranio-caudal axis; the boundary between two consecutive
levels is the plane halfway between their centroids whose normal is the axis between
them (so a curved, lordotic spine gets tilted boundaries). The posterior arch of a
lumbar vertebra hangs caudally behind its body (the spinous process slopes down, the
inferior articular processes reach the next level's superior ones), so each boundary
is bent behind the bodies (:mod:`usx_model.levels.boundary_prior`) and then moved into
the gaps between the bones by a graph cut (:mod:`usx_model.levels.refine`). A point
belongs to a level only if it also lies in that level's box: within ``half_width_mm``
laterally and ``anterior_mm`` / ``posterior_mm`` in depth, the box reaching posteriorly
to contain the arch; points outside every box get level 0.

**US only**: see :mod:`usx_model.levels.us_only`.
"""

from __future__ import annotations

import numpy as np

from usx_model.base.points import check_points
from usx_model.levels.boundary_prior import BoundaryPrior, arch_boundary_mm, table_offset_mm
from usx_model.levels.refine import NeighbourGraph, refine_mincut


def _unit(v, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)) or np.linalg.norm(v) == 0:
        raise ValueError(f"expected {name} as a non-zero finite (3,) vector, got {v}")
    return v / np.linalg.norm(v)


def split_levels_xray(
    points_mm: np.ndarray,
    body_centroids_mm: dict[int, np.ndarray],
    lateral_axis: np.ndarray,
    half_width_mm: float = 65.0,
    anterior_mm: float = 35.0,
    posterior_mm: float = 95.0,
    end_margin_mm: float = 30.0,
    boundary: BoundaryPrior = BoundaryPrior.TABLE,
    arch_shift_mm: float = 8.0,
    refine: bool = True,
    midplanes: dict | None = None,
    graph: NeighbourGraph | None = None,
) -> np.ndarray:
    """Level of every point from the X-ray body centroids.

    Args:
        points_mm: (N, 3) US bone points, base frame.
        body_centroids_mm: level (1..5) -> (3,) body centroid (placed X-ray points), base
            frame; at least two levels (a lower level number is more cranial).
        lateral_axis: (3,) left-right axis (the placement plane normal), base frame.
        half_width_mm: lateral half size of each level's box.
        anterior_mm: box depth in front of the body centroid.
        posterior_mm: box depth behind the body centroid (reaches the spinous tip).
        end_margin_mm: how far beyond the top (bottom) centroid the first (last) box
            reaches, besides the half pitch.
        boundary: how the boundary bends behind the bodies: the table fitted on phantom
            spines or the three-zone rule (see :mod:`usx_model.levels.boundary_prior`).
        arch_shift_mm: size of the rule's shift (``BoundaryPrior.RULE`` only).
        refine: move the boundaries into the gaps between the bones
            (:func:`usx_model.levels.refine.refine_mincut`).
        midplanes: level -> mid-sagittal plane (``LateralPlane``, e.g. from
            :func:`usx_model.ingest.symmetry.symmetry_planes`); the lateral distance
            used by the boundary prior is then measured from the two neighbours'
            planes (follows axial rotation); None measures it from the centroids.
        graph: the refinement's graph of ``points_mm`` built beforehand
            (:func:`usx_model.levels.refine.neighbour_graph`), or None.

    Returns:
        (N,) int8 levels, 0 for points outside every box.

    Raises:
        ValueError: fewer than two levels, bad shapes or non-finite values.
    """
    p = check_points(points_mm, "points_mm")
    geo = split_geometry(p, body_centroids_mm, lateral_axis)
    levels, c, lat, up, post = geo
    n_b = len(c) - 1
    side, depth, height = boundary_coordinates(p, geo, midplanes)
    if BoundaryPrior(boundary) is BoundaryPrior.TABLE:
        above = height - table_offset_mm(side, depth)
    else:
        above = height - arch_boundary_mm(side, depth, arch_shift_mm)
    idx = np.sum(above < 0, axis=1)  # boundaries lying above the point
    if refine:
        idx = refine_mincut(p, idx, above, graph=graph)
    rel = p - c[idx]
    d_lat = np.abs(rel @ lat)
    d_post = np.einsum("nk,nk->n", rel, post[idx])
    d_up = np.einsum("nk,nk->n", rel, up[idx])
    pitch = np.linalg.norm(np.diff(c, axis=0), axis=1)
    top_ok = (idx > 0) | (d_up <= 0.5 * pitch[0] + end_margin_mm)
    bot_ok = (idx < n_b) | (d_up >= -(0.5 * pitch[-1] + end_margin_mm))
    inside = (d_lat <= half_width_mm) & (d_post >= -anterior_mm) & (d_post <= posterior_mm)
    out = np.asarray(levels, dtype=np.int8)[idx]
    return np.where(inside & top_ok & bot_ok, out, 0).astype(np.int8)


def split_geometry(p: np.ndarray, body_centroids_mm: dict[int, np.ndarray], lateral_axis):
    """(levels, centroids (L, 3), lateral (3,), per-level cranial (L, 3) and posterior (L, 3))."""
    levels = sorted(body_centroids_mm)
    if len(levels) < 2:
        raise ValueError(f"expected body centroids of at least 2 levels, got {levels}")
    if any(lv not in (1, 2, 3, 4, 5) for lv in levels):
        raise ValueError(f"expected levels in 1..5, got {levels}")
    c = np.array(
        [
            check_points(np.reshape(body_centroids_mm[lv], (1, 3)), f"L{lv} centroid")[0]
            for lv in levels
        ]
    )
    lat = _unit(lateral_axis, "lateral_axis")
    # local cranial axis of each level: between its neighbours (one-sided at the ends)
    up = np.array([c[max(i - 1, 0)] - c[min(i + 1, len(c) - 1)] for i in range(len(c))])
    up -= (up @ lat)[:, None] * lat
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    post = np.cross(lat, up)
    # the US points lie behind the bodies: orient the depth axis towards them
    sign = np.sign(np.mean((p - c.mean(axis=0)) @ post.mean(axis=0)))
    post *= sign if sign != 0 else 1.0
    return levels, c, lat, up, post


def boundary_coordinates(
    p: np.ndarray, geo, midplanes: dict | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per point and boundary: (|lateral|, depth, height above the halfway plane), (N, B) each.

    |lateral| is measured from the two neighbours' mid-sagittal planes when given (else
    from the centroids), depth posterior of the line between the two centroids, height
    along the axis between them from their midpoint (+ = cranial).
    """
    levels, c, lat, _, post = geo
    if midplanes is not None:
        missing = [lv for lv in levels if lv not in midplanes]
        if missing:
            raise ValueError(f"midplanes lack levels {missing}")
    shape = (len(p), len(c) - 1)
    side, depth, height = np.empty(shape), np.empty(shape), np.empty(shape)
    for i in range(len(c) - 1):
        axis = c[i] - c[i + 1]
        axis -= (axis @ lat) * lat
        axis /= np.linalg.norm(axis)
        mid = 0.5 * (c[i] + c[i + 1])
        depth[:, i] = (p - mid) @ (0.5 * (post[i] + post[i + 1]))
        if midplanes is None:
            side[:, i] = np.abs((p - mid) @ lat)
        else:
            pa, pb = midplanes[levels[i]], midplanes[levels[i + 1]]
            da = (p - np.asarray(pa.point_mm)) @ np.asarray(pa.normal)
            db = (p - np.asarray(pb.point_mm)) @ np.asarray(pb.normal)
            side[:, i] = np.abs(0.5 * (da + db * np.sign(np.dot(pa.normal, pb.normal))))
        height[:, i] = (p - mid) @ axis
    return side, depth, height
