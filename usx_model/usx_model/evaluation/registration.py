"""Measure CBCT <-> US ICP on phantom spines under random 10 mm / 10 deg initial errors.

Protocol (one spine per seed):

1. simulate the US bone points of a whole sweep in a random robot base frame
   (:func:`usx_model.evaluation.cases.make_sweep_case`: partial, posterior only,
   axial/lateral noise, 2 % outliers);
2. voxelise the spine into a synthetic CBCT in its own frame (bone 700 HU, soft tissue
   40 HU, Gaussian blur and noise), read back with :func:`~usx_model.ingest.cbct.bone_surface`
   (HU threshold, posterior-facing surface only);
3. perturb the true ``T_base_cbct`` by a rotation of exactly ``rot_deg`` about a random
   axis through the US cloud centroid and a translation of exactly ``trans_mm`` in a
   random direction, and run :func:`~usx_model.registration.icp.register_cbct_to_us`;
4. errors: rotation angle of ``R_est R_true^T`` (deg) and the displacement of the US
   cloud centroid mapped into the CBCT by the estimate vs the truth (mm).
"""

from __future__ import annotations

import argparse

import numpy as np
import open3d as o3d
from scipy import ndimage
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import (
    apply_transform,
    invert_transform,
    make_transform,
    perturbation,
)
from usx_model.evaluation.cases import make_sweep_case, phantom_spine
from usx_model.ingest.cbct import BoneSurface, CbctVolume, bone_surface
from usx_model.registration.icp import register_cbct_to_us
from usx_model.sim.phantom.types import Spine


def synthetic_cbct(
    spine: Spine,
    T_cbct_spine: np.ndarray,
    spacing_mm: float = 1.0,
    seed: int = 0,
    bone_hu: float = 700.0,
    tissue_hu: float = 40.0,
    noise_hu: float = 30.0,
) -> CbctVolume:
    """A CBCT-like HU volume of ``spine`` on a grid aligned with the CBCT frame.

    Args:
        spine: the spine (spine frame).
        T_cbct_spine: (4, 4) pose of the spine in the CBCT frame.
        spacing_mm: isotropic voxel size.
        seed: noise seed.

    Returns:
        CbctVolume in HU, ``T_lps_voxel`` mapping voxels to the CBCT frame.
    """
    scene = o3d.t.geometry.RaycastingScene()
    allv = []
    for v in spine.vertebrae.values():
        vv = apply_transform(T_cbct_spine, v.vertices_mm).astype(np.float32)
        allv.append(vv)
        scene.add_triangles(o3d.core.Tensor(vv), o3d.core.Tensor(v.faces.astype(np.uint32)))
    allv = np.vstack(allv)
    lo = allv.min(axis=0) - 8.0
    shape = np.ceil((allv.max(axis=0) + 8.0 - lo) / spacing_mm).astype(int)
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)
    pts = (lo + grid.reshape(-1, 3) * spacing_mm).astype(np.float32)
    occ = scene.compute_occupancy(o3d.core.Tensor(pts)).numpy().reshape(tuple(shape))
    hu = np.where(occ > 0, bone_hu, tissue_hu).astype(np.float32)
    hu = ndimage.gaussian_filter(hu, 0.6)
    hu += np.random.default_rng(seed).normal(0.0, noise_hu, hu.shape).astype(np.float32)
    return CbctVolume(hu, make_transform(np.eye(3) * spacing_mm, lo), is_label=False)


def transform_errors(
    T_est: np.ndarray, T_true: np.ndarray, at_mm: np.ndarray
) -> tuple[float, float]:
    """(rotation error deg, displacement mm of the point ``at_mm`` mapped by both)."""
    dR = T_est[:3, :3] @ T_true[:3, :3].T
    ang = float(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1.0, 1.0))))
    d = apply_transform(T_est, at_mm[None])[0] - apply_transform(T_true, at_mm[None])[0]
    return ang, float(np.linalg.norm(d))


def _stats(e: np.ndarray) -> dict:
    return {"mean": float(e.mean()), "p95": float(np.percentile(e, 95)), "max": float(e.max())}


def evaluate_icp(
    seeds: tuple[int, ...] = (7000, 7001, 7002),
    trials: int = 20,
    rot_deg: float = 10.0,
    trans_mm: float = 10.0,
    tol_deg: float = 1.0,
    tol_mm: float = 1.0,
) -> dict:
    """Run the protocol of this module; return the error distribution.

    Returns:
        dict with per-trial errors and mean / max / success rate (both <= tolerances).
    """
    rot_err, trans_err, conv = [], [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        spine = phantom_spine(seed)
        case = make_sweep_case(seed, spine)
        T_cbct_spine = make_transform(
            Rotation.from_euler("z", rng.uniform(-5, 5), degrees=True).as_matrix(),
            rng.uniform(-50, 50, 3),
        )
        surf: BoneSurface = bone_surface(synthetic_cbct(spine, T_cbct_spine, seed=seed))
        T_true = case.T_base_spine @ invert_transform(T_cbct_spine)
        centre = case.points_base_mm.mean(axis=0)
        T_true_cbct_base = invert_transform(T_true)
        for _ in range(trials):
            T_init = perturbation(rng, centre, rot_deg, trans_mm) @ T_true
            T_est, res = register_cbct_to_us(
                surf.points_mm, surf.normals, case.points_base_mm, T_init
            )
            a, d = transform_errors(invert_transform(T_est), T_true_cbct_base, centre)
            rot_err.append(a)
            trans_err.append(d)
            conv.append(res.converged)
    rot_err, trans_err = np.array(rot_err), np.array(trans_err)
    ok = (rot_err <= tol_deg) & (trans_err <= tol_mm)
    return {
        "trials": len(ok),
        "initial_error": {"rot_deg": rot_deg, "trans_mm": trans_mm},
        "rot_err_deg": _stats(rot_err),
        "trans_err_mm": _stats(trans_err),
        "success_rate": float(ok.mean()),
        "converged_rate": float(np.mean(conv)),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``usx measure registration``."""
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(7000, 7010)))
    parser.add_argument("--trials", type=int, default=20, help="perturbations per spine")
    parser.add_argument("--rot-deg", type=float, default=10.0, help="initial rotation error")
    parser.add_argument("--trans-mm", type=float, default=10.0, help="initial translation error")


def run(args: argparse.Namespace) -> dict:
    """``usx measure registration``: ICP error distribution over seeds and perturbations."""
    return evaluate_icp(tuple(args.seeds), args.trials, args.rot_deg, args.trans_mm)
