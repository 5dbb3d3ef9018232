"""Measure X-ray lateral placement (no CBCT) and the level split on phantom spines.

Per seed: a whole-sweep US case in a random base frame
(:func:`usx_model.evaluation.cases.make_sweep_case`), a cone-beam lateral X-ray of the
same spine with its per-level body label image (:mod:`usx_model.sim.xray`), the
device frame of :mod:`usx_model.ingest.xray` at the shot's isocentre and the true
``T_base_xray``. Then:

- placement: :func:`~usx_model.ingest.xray_points.lateral_plane_from_us` on the US
  points (one plane for the sweep), then per level
  (:func:`~usx_model.ingest.xray_points.per_level_planes`); error per level = distance
  along the spine's true lateral axis from the true body centroid (the body mid-plane of
  a symmetric vertebra) to the level's plane. Reported: the paper's single plane, the
  mid-extent per level, and the symmetry plane per level
  (:func:`~usx_model.ingest.symmetry.symmetry_planes`, the one used for the split);
- split: X-ray points placed on that plane, their per-level centroids, then
  :func:`~usx_model.levels.split.split_levels_xray`; accuracy = share of US points
  (segmentation outliers excluded) whose level equals the level of the mesh that
  produced them (unassigned points count as wrong). The US-only fallback is scored
  the same way.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from usx_model.base.parts import Part
from usx_model.base.transforms import invert_transform, make_transform, perturbation
from usx_model.evaluation.cases import SweepCase, make_sweep_case
from usx_model.evaluation.registration import synthetic_cbct
from usx_model.ingest.cbct import bone_surface
from usx_model.ingest.placement import place_with_cbct
from usx_model.ingest.symmetry import symmetry_planes
from usx_model.ingest.xray import device_geometry
from usx_model.ingest.xray_points import (
    LateralPlane,
    lateral_plane_from_us,
    level_centroids,
    per_level_planes,
    place_xray_labels,
)
from usx_model.levels.boundary_prior import fit_boundary_offsets
from usx_model.levels.split import boundary_coordinates, split_geometry, split_levels_xray
from usx_model.levels.us_only import spinous_peaks, split_levels_us_only
from usx_model.registration.icp import register_cbct_to_us
from usx_model.sim.phantom.types import Spine
from usx_model.sim.phantom.verse import load_verse_spine
from usx_model.sim.xray import lateral_geometry, render_lateral_xray


def simulate_xray_for_case(
    case: SweepCase, sid_mm: float = 1100.0, sod_mm: float = 750.0, pixel_mm: float = 0.5
):
    """(label image, device-frame geometry, T_base_xray) of a lateral shot of the case."""
    g = lateral_geometry(case.spine, sid_mm=sid_mm, sod_mm=sod_mm, pixel_mm=pixel_mm)
    label = render_lateral_xray(case.spine, g).label
    iso = np.asarray(g.source_mm) + sod_mm * g.normal
    T_base_xray = case.T_base_spine @ make_transform(np.eye(3), iso)
    return label, device_geometry(g.shape, pixel_mm, sid_mm, sod_mm), T_base_xray


def _plane_errors(case: SweepCase, planes: dict) -> list[float]:
    """Per level: |offset| along the true lateral axis from body centroid to its plane."""
    T = invert_transform(case.T_base_spine)
    out = []
    for lv, v in case.spine.vertebrae.items():
        p0 = T[:3, :3] @ planes[lv].point_mm + T[:3, 3]
        n = T[:3, :3] @ planes[lv].normal
        c = np.asarray(v.body_centroid_mm)
        out.append(abs(float(n @ (p0 - c) / n[0])))
    return out


@dataclass
class LevelCase:
    """One simulated sweep + lateral X-ray, placed and ready to split.

    Attributes:
        case: the US sweep case (spine, base pose, points with their true levels).
        plane: the paper's single placement plane (US OBB axis 2 mid-extent).
        slabs: level -> mid-extent plane of the level's slab.
        planes: level -> symmetry plane (the placement used).
        centroids: level -> (3,) centroid of the placed X-ray body points, base frame.
    """

    case: SweepCase
    plane: LateralPlane
    slabs: dict[int, LateralPlane]
    planes: dict[int, LateralPlane]
    centroids: dict[int, np.ndarray]


def simulate_level_case(seed: int, spine: Spine | None = None) -> LevelCase:
    """Simulate and place one case (see the module docstring); ``spine`` overrides the
    phantom of ``seed`` (the seed then only draws noise and the base pose)."""
    case = make_sweep_case(seed, spine)
    plane = lateral_plane_from_us(case.points_base_mm)
    label, geom, T_base_xray = simulate_xray_for_case(case)
    first = level_centroids(place_xray_labels(label, geom, T_base_xray, plane))
    slabs = per_level_planes(case.points_base_mm, first, plane)
    planes = symmetry_planes(case.points_base_mm, first, slabs)
    centroids = level_centroids(place_xray_labels(label, geom, T_base_xray, planes))
    return LevelCase(case, plane, slabs, planes, centroids)


def _summary(errors: list[float]) -> dict:
    e = np.asarray(errors)
    return {"mean": float(e.mean()), "max": float(e.max()), "within_2mm": float(np.mean(e <= 2.0))}


def evaluate_placement_and_split(
    seeds: tuple[int, ...] = tuple(range(7000, 7010)), spine: Spine | None = None
) -> dict:
    """Run the protocol of this module on ``seeds``; return errors and accuracies.

    ``spine`` (e.g. :func:`verse_spine_with_bodies`) replaces the phantom of every seed.
    """
    place_err, global_err, slab_err, acc_x, acc_us, axis_ok = [], [], [], [], [], []
    for seed in seeds:
        lc = simulate_level_case(seed, spine)
        case = lc.case
        R = case.T_base_spine[:3, :3]
        # OBB axes vs the truth: 1 = cranio-caudal (z), 2 = lateral (x), 3 = depth (y)
        axis_ok.append(bool(np.all(np.argmax(np.abs(lc.plane.axes @ R), axis=1) == [2, 0, 1])))
        global_err += _plane_errors(case, dict.fromkeys(case.spine.levels, lc.plane))
        slab_err += _plane_errors(case, lc.slabs)
        place_err += _plane_errors(case, lc.planes)
        gt = case.level > 0
        lv_x = split_levels_xray(
            case.points_base_mm, lc.centroids, lc.plane.normal, midplanes=lc.planes
        )
        acc_x.append(float(np.mean(lv_x[gt] == case.level[gt])))
        lv_u = split_levels_us_only(case.points_base_mm, cranial=R[:, 2], towards_probe=R[:, 1])
        acc_us.append(float(np.mean(lv_u[gt] == case.level[gt])))
    return {
        "seeds": [int(s) for s in seeds],
        "obb_axis_order_ok": float(np.mean(axis_ok)),
        "lateral_placement_err_mm": _summary(place_err),
        "lateral_placement_err_mm_one_plane": _summary(global_err),
        "lateral_placement_err_mm_per_level_extent": _summary(slab_err),
        "split_accuracy_xray": {
            "mean": float(np.mean(acc_x)),
            "min": float(np.min(acc_x)),
            "per_seed": acc_x,
        },
        "split_accuracy_us_only": {
            "mean": float(np.mean(acc_us)),
            "min": float(np.min(acc_us)),
            "per_seed": acc_us,
        },
    }


def evaluate_placement_with_cbct(
    seeds: tuple[int, ...] = tuple(range(7000, 7005)), rot_deg: float = 10.0, trans_mm: float = 10.0
) -> dict:
    """Lateral placement through the CBCT chain, ICP included.

    Per seed: a synthetic CBCT of the spine in its own frame, ``T_base_cbct`` recovered
    by CBCT <-> US ICP from a ``rot_deg`` / ``trans_mm`` perturbation of the truth, the
    device calibration ``T_cbct_xray`` exact, then
    :func:`~usx_model.ingest.placement.place_with_cbct`. Errors as in
    :func:`evaluate_placement_and_split`.
    """
    errors = []
    for seed in seeds:
        rng = np.random.default_rng([seed, 5])
        case = make_sweep_case(seed)
        T_cbct_spine = make_transform(np.eye(3), rng.uniform(-50, 50, 3))
        vol = synthetic_cbct(case.spine, T_cbct_spine, seed=seed)
        post, full = bone_surface(vol), bone_surface(vol, posterior_only=False)
        T_true = case.T_base_spine @ invert_transform(T_cbct_spine)
        centre = case.points_base_mm.mean(axis=0)
        T0 = perturbation(rng, centre, rot_deg, trans_mm) @ T_true
        T_base_cbct, _ = register_cbct_to_us(post.points_mm, post.normals, case.points_base_mm, T0)
        label, geom, T_base_xray = simulate_xray_for_case(case)
        T_cbct_xray = T_cbct_spine @ invert_transform(case.T_base_spine) @ T_base_xray
        _, planes = place_with_cbct(label, geom, T_base_cbct, T_cbct_xray, full.points_mm)
        errors += _plane_errors(case, planes)
    return {"seeds": [int(s) for s in seeds], "lateral_placement_err_mm": _summary(errors)}


def verse_spine_with_bodies(mask_path: str, centroid_json_path: str) -> Spine:
    """A real VerSe spine whose body vertices are labelled (part 1) for the X-ray.

    VerSe masks carry no part labels; following the design's arch/body split, the
    vertices anterior of the vertebra's centre of gravity (y below it, LPS) count as
    body, the rest as arch (``Part.LAMINA``, as ``usx evaluate --real`` labels the
    posterior half; the scores accept only part codes). Body centroids are VerSe's.
    """
    spine = load_verse_spine(mask_path, centroid_json_path)
    for v in spine.vertebrae.values():
        body = np.asarray(v.vertices_mm)[:, 1] < v.centroid_mm[1]
        v.part = np.where(body, int(Part.BODY), int(Part.LAMINA)).astype(np.uint8)
    return spine


def fit_prior_table(seeds: tuple[int, ...] = tuple(range(6000, 6030))) -> np.ndarray:
    """Refit ``levels.boundary_prior.OFFSET_TABLE_MM`` on the cases of ``seeds`` (< 7000)."""
    cols: list[list[np.ndarray]] = [[], [], [], []]
    for seed in seeds:
        lc = simulate_level_case(seed)
        p, lv = lc.case.points_base_mm, lc.case.level
        geo = split_geometry(p, lc.centroids, lc.plane.normal)
        side, depth, height = boundary_coordinates(p, geo, lc.planes)
        levels = geo[0]
        for i in range(side.shape[1]):
            m = (lv == levels[i]) | (lv == levels[i + 1])
            for col, v in zip(
                cols, (side[m, i], depth[m, i], height[m, i], lv[m] == levels[i]), strict=True
            ):
                col.append(v)
    return fit_boundary_offsets(*(np.concatenate(c) for c in cols))


def fit_tip_offsets(seeds: tuple[int, ...] = tuple(range(6000, 6030))) -> dict:
    """Refit ``levels.us_only`` TIP_TO_BODY_CRANIAL_MM and BODY_DEPTH_MM (true bodies)."""
    up_off, depth_off = [], []
    for seed in seeds:
        case = make_sweep_case(seed)
        R = case.T_base_spine[:3, :3]
        tips, axes, _ = spinous_peaks(case.points_base_mm, R[:, 2], R[:, 1])
        if len(tips) != len(case.spine.levels):
            continue
        c = case.points_base_mm.mean(axis=0)
        bodies = np.array([case.spine.vertebrae[lv].body_centroid_mm for lv in case.spine.levels])
        rel = bodies @ R.T + case.T_base_spine[:3, 3] - c
        up_off.append(tips - rel @ axes[0])
        depth_off.append(rel @ axes[2])
    return {
        "spines_used": len(up_off),
        "tip_to_body_cranial_mm": np.round(np.mean(up_off, axis=0), 1).tolist(),
        "body_depth_mm": np.round(np.mean(depth_off, axis=0), 1).tolist(),
        "sd_cranial_mm": np.round(np.std(up_off, axis=0), 1).tolist(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``usx measure levels``."""
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(7000, 7010)))
    parser.add_argument(
        "--fit",
        action="store_true",
        help="refit the boundary prior table and tip offsets (seeds 6000-6029) instead",
    )
    parser.add_argument("--cbct", action="store_true", help="placement through the CBCT chain")
    parser.add_argument(
        "--verse",
        nargs=2,
        metavar=("MASK", "CENTROIDS"),
        help="use this real VerSe spine (body = anterior of the centre of gravity)",
    )


def run(args: argparse.Namespace) -> dict:
    """``usx measure levels``: placement and split accuracy, or (``--fit``) the refitted priors."""
    if args.fit:
        return {"offset_table_mm": fit_prior_table().tolist(), "tips": fit_tip_offsets()}
    if args.cbct:
        return evaluate_placement_with_cbct(tuple(args.seeds))
    spine = None if args.verse is None else verse_spine_with_bodies(*args.verse)
    return evaluate_placement_and_split(tuple(args.seeds), spine)
