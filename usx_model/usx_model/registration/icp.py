"""Rigid point-to-plane ICP with a coarse-to-fine schedule (CBCT bone surface <-> US points).

The US bone points (robot base frame) are the *source* and the CBCT bone surface (CBCT
frame, with exact normals from the surface mesh) the *target*: every US point lies on the
bone surface, whereas most of the CBCT surface has no US counterpart, so matching
US -> CBCT gives each source point a true correspondence, and the normals that the
point-to-plane metric needs come from the clean surface, not from the noisy US cloud.

Robustness to a 10 mm / 10 deg initial error comes from the schedule: open3d's
``registration_icp`` runs at decreasing maximum correspondence distances (default
20 -> 10 -> 5 -> 2 mm), so the early stages see enough of the cloud to pull it in and the
late ones ignore segmentation outliers; a Tukey biweight kernel whose width follows the
stage distance down-weights residuals that remain (Chen & Medioni 1992 for the
point-to-plane metric; Rusinkiewicz & Levoy 2001 for the staging).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from usx_model.base.points import check_points
from usx_model.base.transforms import invert_transform, validate_transform

#: Default max correspondence distances, mm, coarse to fine.
DEFAULT_SCHEDULE_MM: tuple[float, ...] = (20.0, 10.0, 5.0, 2.0)


@dataclass
class IcpResult:
    """Outcome of :func:`register_point_to_plane`.

    Attributes:
        T_target_source: (4, 4) transform mapping source points into the target frame.
        fitness: share of source points with a target correspondence within the last
            stage's distance (0..1).
        inlier_rmse_mm: RMS point-to-plane residual of those correspondences, mm.
        converged: fitness >= ``min_fitness`` and rmse <= ``max_rmse_mm`` at the end.
        stages: per stage (max distance mm, fitness, inlier rmse mm).
    """

    T_target_source: np.ndarray
    fitness: float
    inlier_rmse_mm: float
    converged: bool
    stages: list[tuple[float, float, float]] = field(default_factory=list)


def _cloud(points: np.ndarray, normals: np.ndarray | None = None) -> o3d.geometry.PointCloud:
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    if normals is not None:
        pc.normals = o3d.utility.Vector3dVector(normals)
    return pc


def register_point_to_plane(
    source_points: np.ndarray,
    target_points: np.ndarray,
    target_normals: np.ndarray,
    T_init: np.ndarray | None = None,
    schedule_mm: tuple[float, ...] = DEFAULT_SCHEDULE_MM,
    max_iterations: int = 60,
    robust: bool = True,
    min_fitness: float = 0.5,
    max_rmse_mm: float = 1.5,
) -> IcpResult:
    """Align source points to a target surface given as points with normals.

    Args:
        source_points: (N, 3) points, mm, source frame (e.g. US bone points, base frame).
        target_points: (M, 3) surface points, mm, target frame (e.g. CBCT bone surface).
        target_normals: (M, 3) unit outward normals of the target points.
        T_init: (4, 4) initial ``T_target_source``; identity if None.
        schedule_mm: decreasing max correspondence distances, one ICP stage each.
        max_iterations: iteration cap per stage.
        robust: use a Tukey kernel of width = the stage distance.
        min_fitness: lower bound of the final fitness for ``converged``.
        max_rmse_mm: upper bound of the final inlier RMSE for ``converged``.

    Returns:
        IcpResult with ``T_target_source``.

    Raises:
        ValueError: malformed clouds/normals, a bad ``T_init`` or schedule.
    """
    src = check_points(source_points, "source_points", 3)
    tgt = check_points(target_points, "target_points", 3)
    nrm = np.asarray(target_normals, dtype=np.float64)
    if nrm.shape != tgt.shape:
        raise ValueError(f"expected target_normals of shape {tgt.shape}, got {nrm.shape}")
    if not np.all(np.isfinite(nrm)):
        raise ValueError("target_normals contains non-finite values")
    T = np.eye(4) if T_init is None else validate_transform(T_init, "T_init", atol=1e-5)
    sched = [float(d) for d in schedule_mm]
    if not sched or min(sched) <= 0 or any(b > a for a, b in itertools.pairwise(sched)):
        raise ValueError(
            f"expected a non-empty, decreasing, positive schedule_mm, got {schedule_mm}"
        )
    if max_iterations < 1:
        raise ValueError(f"max_iterations must be >= 1, got {max_iterations}")
    reg = o3d.pipelines.registration
    src_pc, tgt_pc = _cloud(src), _cloud(tgt, nrm)
    criteria = reg.ICPConvergenceCriteria(1e-7, 1e-7, max_iterations)
    stages = []
    for dist in sched:
        method = (
            reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=dist))
            if robust
            else reg.TransformationEstimationPointToPlane()
        )
        res = reg.registration_icp(src_pc, tgt_pc, dist, T, method, criteria)
        # with no correspondence at all open3d answers the identity, not the start:
        # keep the current estimate instead of jumping to the origin
        if res.fitness > 0:
            T = np.asarray(res.transformation, dtype=np.float64).copy()
        stages.append((dist, float(res.fitness), float(res.inlier_rmse)))
    fitness, rmse = stages[-1][1], stages[-1][2]
    return IcpResult(T, fitness, rmse, bool(fitness >= min_fitness and rmse <= max_rmse_mm), stages)


def register_cbct_to_us(
    cbct_points_mm: np.ndarray,
    cbct_normals: np.ndarray,
    us_points_base_mm: np.ndarray,
    T_base_cbct_init: np.ndarray,
    **kwargs,
) -> tuple[np.ndarray, IcpResult]:
    """Estimate ``T_base_cbct`` from the CBCT bone surface and the US bone points.

    Args:
        cbct_points_mm: (M, 3) CBCT bone surface points, CBCT frame (best: only the
            posterior-facing surface, see :func:`usx_model.ingest.cbct.bone_surface`).
        cbct_normals: (M, 3) their outward normals.
        us_points_base_mm: (N, 3) US bone points, robot base frame.
        T_base_cbct_init: (4, 4) initial guess (e.g. from the patient setup).
        **kwargs: passed to :func:`register_point_to_plane`.

    Returns:
        (T_base_cbct (4, 4), IcpResult whose ``T_target_source`` is ``T_cbct_base``).
    """
    T0 = validate_transform(T_base_cbct_init, "T_base_cbct_init", atol=1e-5)
    res = register_point_to_plane(
        us_points_base_mm, cbct_points_mm, cbct_normals, invert_transform(T0), **kwargs
    )
    return invert_transform(res.T_target_source), res
