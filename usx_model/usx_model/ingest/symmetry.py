"""Per-vertebra mid-sagittal (symmetry) planes from US bone points.

The paper's placement puts a vertebra's X-ray points on the sagittal plane through the
middle of the US extent. That middle lies on the vertebra's plane of bilateral symmetry
but some 25 mm posterior of the body (the transverse processes and laminae that set the
extent are behind the canal), so an axially rotated vertebra (a few degrees is common,
more with scoliosis) moves it laterally at the body by ``25 mm x tan(rotation)``, and a
scoliotic spine shifts each body off one whole-sweep plane. Fitting the symmetry plane
itself removes both: the body centre lies on it at any depth.

Method (mirror registration): reflect the level's points across the current plane and
register the reflection back onto the points with point-to-plane ICP
(:func:`usx_model.registration.icp.register_point_to_plane`, normals estimated from
the points). The ICP transform composed with the reflection is the true reflection up
to noise; its linear part's eigenvector of eigenvalue -1 is the plane normal and the
midpoint between any point and its image lies on the plane. Two rounds suffice from a
start within ~10 mm / 10 deg.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d

from usx_model.ingest.xray_points import LateralPlane
from usx_model.registration.icp import register_point_to_plane


def symmetry_plane(
    points_mm: np.ndarray,
    init: LateralPlane,
    rounds: int = 2,
    schedule_mm: tuple[float, ...] = (10.0, 5.0, 2.0, 1.0),
) -> LateralPlane:
    """Fit the bilateral symmetry plane of one vertebra's US points.

    Args:
        points_mm: (N, 3) the level's US bone points, base frame (N >= 20).
        init: starting plane (e.g. :func:`usx_model.ingest.xray_points.per_level_planes`).
        rounds: reflect-and-register rounds.
        schedule_mm: ICP correspondence distances per round, coarse to fine.

    Returns:
        LateralPlane (``axes``/``extents_mm`` copied from ``init``).

    Raises:
        ValueError: too few points, ``rounds`` < 1, or no overlap with the mirror image.
    """
    p = np.asarray(points_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 20:
        raise ValueError(f"expected points_mm as (N, 3) float points with N >= 20, got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("points_mm contains non-finite values")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    n = np.asarray(init.normal, dtype=np.float64) / np.linalg.norm(init.normal)
    p0 = np.asarray(init.point_mm, dtype=np.float64)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p))
    pc.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=16))
    normals = np.asarray(pc.normals)
    c = p.mean(axis=0)
    for _ in range(rounds):
        H = np.eye(3) - 2.0 * np.outer(n, n)
        h = 2.0 * (p0 @ n) * n  # reflection x -> H x + h
        res = register_point_to_plane(p @ H.T + h, p, normals, schedule_mm=schedule_mm)
        if res.fitness == 0:
            raise ValueError(
                "symmetry fit found no overlap between the points and their mirror image"
            )
        R, t = res.T_target_source[:3, :3], res.T_target_source[:3, 3]
        A, b = R @ H, R @ h + t
        w, v = np.linalg.eigh(0.5 * (A + A.T))
        n_new = v[:, np.argmin(w)]
        n = n_new * np.sign(n_new @ n)
        p0 = 0.5 * (c + A @ c + b)
    return LateralPlane(p0, n, init.axes, init.extents_mm)


def symmetry_planes(
    us_points_base_mm: np.ndarray,
    centroids_mm: dict[int, np.ndarray],
    planes: dict[int, LateralPlane],
    half_slab_mm: float = 18.0,
    max_move_mm: float = 8.0,
    max_tilt_deg: float = 20.0,
) -> dict[int, LateralPlane]:
    """:func:`symmetry_plane` of every level, on the US points of its slab.

    Args:
        us_points_base_mm: (N, 3) US bone points, base frame.
        centroids_mm: level -> (3,) body centroid (first placement), >= 2 levels.
        planes: level -> starting plane (e.g. from ``per_level_planes``).
        half_slab_mm: half thickness of a level's slab along its cranio-caudal axis
            (about half a vertebral pitch: neighbours' processes stay out).

        max_move_mm, max_tilt_deg: a fitted plane that moved further than this from the
            starting plane (at the level's centroid) or tilted further from it (a slab
            with one side of the arch only, another vertebra's processes) is not trusted.

    Returns:
        level -> LateralPlane; a level whose slab holds fewer than 20 points, whose fit
        fails, moves or tilts too far keeps its starting plane.
    """
    p = np.asarray(us_points_base_mm, dtype=np.float64)
    levels = sorted(centroids_mm)
    if len(levels) < 2:
        raise ValueError(f"expected centroids of at least 2 levels, got {levels}")
    c = np.array([np.asarray(centroids_mm[lv], dtype=np.float64) for lv in levels])
    out = {}
    for i, lv in enumerate(levels):
        n = np.asarray(planes[lv].normal, dtype=np.float64)
        a = c[max(i - 1, 0)] - c[min(i + 1, len(c) - 1)]
        a -= (a @ n) * n
        a /= np.linalg.norm(a)
        slab = p[np.abs((p - c[i]) @ a) < half_slab_mm]
        out[lv] = planes[lv]
        if len(slab) < 20:
            continue
        try:
            fitted = symmetry_plane(slab, planes[lv])
        except ValueError:  # e.g. no overlap between the slab and its mirror image
            continue
        # where the fitted plane crosses the level's lateral line, against the start
        fn = np.asarray(fitted.normal, dtype=np.float64)
        cos = abs(float(fn @ n))
        tilt = np.degrees(np.arccos(min(1.0, cos)))
        start = c[i] + ((planes[lv].point_mm - c[i]) @ n) * n
        move = abs(float((fitted.point_mm - start) @ fn)) / max(cos, 1e-9)
        if move <= max_move_mm and tilt <= max_tilt_deg:
            out[lv] = fitted
    return out
