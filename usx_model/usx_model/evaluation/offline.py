"""``usx pipeline``: a simulated robotic sweep through every intra-operative stage.

A phantom spine (or the real VerSe sub-verse004 spine) lies on the table in front of a
simulated iiwa. The robot's planned joint trajectory is turned back into probe poses by
forward kinematics (``tracking``), B-mode frames rendered along it are placed by pose
interpolation, compounded and segmented (``compounding.bone_sweep``), a lateral X-ray is
placed with the US heuristic (``pipeline.spine.place_xray``), a synthetic CBCT is
registered to the US bone points from a 10 mm / 10° start (``registration``), the
points are cut into levels and completed (``pipeline.spine.SpineCompleter``). Each stage
is scored against the ground truth; ``completion_ideal`` runs the same networks on the
simulator's ideal per-level partials of the same spine, for comparison.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from usx_model.base.parts import Part
from usx_model.base.points import thin_points
from usx_model.base.transforms import apply_transform, invert_transform, perturbation
from usx_model.base.xray_geometry import transform_geometry
from usx_model.completion.spine import PatientPrior, SpineCompleter, SpineCompletionResult
from usx_model.completion.xray_placement import XrayObservation, place_xray
from usx_model.compounding.bone_sweep import BoneSweep
from usx_model.compounding.breathing import estimate_breathing
from usx_model.compounding.points import mask_to_base_points
from usx_model.compounding.volume import VolumeGrid
from usx_model.evaluation.registration import synthetic_cbct, transform_errors
from usx_model.evaluation.segmentation import (
    simulator_calibration,
    spine_distance_scene,
    surface_distance_mm,
)
from usx_model.evaluation.spine_report import score_levels
from usx_model.evaluation.stats import json_safe
from usx_model.ingest.cbct import bone_surface
from usx_model.network.inference import complete
from usx_model.network.model import USXComplete
from usx_model.network.us_consistency import snap_to_us_surface
from usx_model.registration.icp import register_cbct_to_us
from usx_model.sim.bmode import BModeSimulator
from usx_model.sim.conditions import (
    ChainConditions,
    FrameDisturbances,
    condition_rng,
    frame_disturbances,
    perturbed_calibration,
)
from usx_model.sim.phantom.types import Spine
from usx_model.sim.probe import ProbeModel
from usx_model.sim.robot_sweep import (
    SERPENTINE_OFFSETS_MM,
    default_table_pose,
    plan_robot_sweep,
)
from usx_model.sim.scene import sample_surface
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import (
    body_midplane_point_mm,
    lateral_geometry,
    render_lateral_xray,
    xray_points_25d,
)
from usx_model.tracking.calibration import ProbeCalibration, load_probe_calibration
from usx_model.tracking.iiwa import forward_kinematics
from usx_model.tracking.interpolation import PoseBuffer

#: stamps start here, so that images stamped early by a clock offset stay positive, ns
EPOCH_NS = 1_000_000_000


@dataclass
class OfflineResult:
    """The JSON report and the arrays behind the pictures."""

    report: dict
    bone_points_base_mm: np.ndarray
    completed_base_mm: dict[int, np.ndarray]
    gt_base_mm: dict[int, np.ndarray]
    R_base_lps: np.ndarray
    #: what the completion returned, as the node would publish it (per-point uncertainty)
    completion: SpineCompletionResult | None = None


def _frac(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def run_offline(
    spine: Spine,
    model_full: USXComplete,
    model_us_only: USXComplete,
    seed: int = 0,
    sweep_speed_mm_s: float = 10.0,
    n_samples: int = 0,
    lateral_offsets_mm: tuple[float, ...] = SERPENTINE_OFFSETS_MM,
    probe_calibration: str | Path | None = None,
    conditions: ChainConditions | None = None,
    calibration: str | Path | None = None,
    breathing_compensation: bool = True,
    xray_shifts: Sequence[tuple[float, float]] = (),
    xray_registration: bool = True,
    us_snap_mm: float = 0.0,
) -> OfflineResult:
    """Run every stage on ``spine`` and score it; see the module docstring.

    ``probe_calibration``: the calibration YAML whose hand-eye ``T_ee_probe`` mounts the
    probe (None = the shipped config/probe.yaml, as the ROS nodes use); the image side
    is the simulated probe's own. This is the truth the simulator renders with.

    ``conditions``: disturbances of the chain (``sim.conditions``); None = an ideal lab.
    ``calibration``: a calibration YAML the compounding uses instead of the truth (an
    estimated one, e.g. from ``usx calibrate``); otherwise it uses the truth, perturbed by
    ``conditions.calib_error_*``.

    ``breathing_compensation``: fit the breathing motion to the bone points and remove
    it (``compounding.breathing``; a still patient's points stay as they are).

    ``xray_registration``: re-register the X-ray to the US bone points before placing it
    (``registration.xray_us``; the patient's posterior direction is the phantom's).

    ``us_snap_mm``: the completion's US surface consistency (``network.us_consistency``;
    0 = off), in the pipeline and in the ideal completion it is compared with.

    ``xray_shifts``: extra (mm, deg) patient shifts between X-ray and sweep to complete
    the same bone points with (the same random direction and axis for every size);
    reported under ``xray_shift_curve``.

    ``lateral_offsets_mm``: one pass per offset (``simulate.robot_sweep``); the default
    three-pass serpentine sees what the network's training partials see (a single
    midline pass gave 1.7x the ideal completion error, three passes 1.2x).
    """
    cond = conditions or ChainConditions()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    T_ee_probe = load_probe_calibration(probe_calibration).T_ee_probe
    plan = plan_robot_sweep(
        spine,
        default_table_pose(),
        T_ee_probe,
        sweep_speed_mm_s=sweep_speed_mm_s,
        frame_rate_hz=30.0,
        joint_rate_hz=100.0,
        lateral_offsets_mm=lateral_offsets_mm,
    )
    T_base_spine = plan.T_base_spine
    probe = ProbeModel()
    sim = BModeSimulator(spine, probe, seed=seed)
    truth = ProbeCalibration(simulator_calibration(probe).image, T_ee_probe)
    used = _used_calibration(truth, cond, seed, calibration)
    timings["plan_s"] = time.perf_counter() - t0

    # --- tracking, compounding, segmentation ---------------------------------------------
    t = time.perf_counter()
    T_base_ee = forward_kinematics(plan.joint_positions_rad)
    lo = T_base_spine[:3, 3] - 200.0
    grid = VolumeGrid.from_bounds(lo, lo + 400.0, 2.0)
    poses = PoseBuffer(capacity=100000, temporal_offset_s=used.temporal_offset_ms * 1e-3)
    sweep = BoneSweep(grid, used, probe.shape, pose_buffer=poses)
    for stamp, T in zip(plan.joint_times_ns, T_base_ee, strict=True):
        sweep.add_pose(EPOCH_NS + int(stamp), T)
    frames = _disturbed_frames(plan, cond, seed)
    gt_visible = []
    for k, T_planned in enumerate(plan.T_spine_probe):
        T_sp = frames.disturbed.probe_pose(k, T_planned)
        frame = sim.render(T_sp)
        bone_mask = frame.bone_mask
        image, air = frames.disturbed.lift_probe(
            k, frame.image, probe.pixel_mm, frames.disturbed.rng
        )
        if air is not None:
            bone_mask = bone_mask & ~air[None, :]
        sweep.add_frame(int(frames.stamps_ns[k]), image)
        T_base_pixel = T_base_spine @ T_sp @ truth.T_probe_image @ truth.image.T_image_pixel()
        gt_visible.append(mask_to_base_points(bone_mask, T_base_pixel))
    sweep.flush()
    bone = sweep.bone_points_mm()
    stamps = sweep.bone_point_stamps_ns()
    fit = estimate_breathing(bone, stamps, sweep.mean_beam_direction())
    if breathing_compensation:
        bone = fit.correct(bone, stamps)
    # how far the fitted motion is from the true one, at the frames' true times
    d_true = frames.disturbed.breathing_mm
    d_fit = fit.displacement_mm(frames.stamps_ns) * (fit.axis @ T_base_spine[:3, 1])
    breathing = fit.as_dict() | {
        "compensated": bool(breathing_compensation and fit.applied),
        "rms_error_mm": float(np.sqrt(np.mean((d_fit - d_true) ** 2))),
    }
    gt_visible = np.vstack(gt_visible)
    timings["sweep_s"] = time.perf_counter() - t

    T_spine_base = invert_transform(T_base_spine)
    scene = spine_distance_scene(spine)
    dist = surface_distance_mm(scene, apply_transform(T_spine_base, bone))
    recall = _recall(gt_visible, bone, 1.0)

    # --- X-ray placement (no CBCT) ----------------------------------------------------------
    t = time.perf_counter()
    geometry = lateral_geometry(spine)
    shot = render_lateral_xray(spine, geometry, scene=sim.scene)

    def shifted_xray(mm: float, deg: float) -> dict[int, np.ndarray]:
        centre = body_midplane_point_mm(spine)
        T_shift = perturbation(condition_rng(seed, "xray_shift"), centre, deg, mm)
        geometry_base = transform_geometry(geometry, T_base_spine @ T_shift)
        obs = XrayObservation(shot.label.astype(np.int64), geometry_base, image=shot.image)
        return place_xray(bone, obs, posterior=T_base_spine[:3, 1] if xray_registration else None)

    xray_base = shifted_xray(cond.xray_shift_mm, cond.xray_shift_deg)
    lateral_err = [
        abs(
            float(np.mean(apply_transform(T_spine_base, pts)[:, 0]))
            - float(spine.vertebrae[lv].body_centroid_mm[0])
        )
        for lv, pts in xray_base.items()
    ]
    timings["xray_s"] = time.perf_counter() - t

    # --- CBCT <-> US registration from a 10 mm / 10 deg start --------------------------------
    t = time.perf_counter()
    rng = np.random.default_rng(seed)
    surf = bone_surface(synthetic_cbct(spine, np.eye(4), seed=seed))
    us_thin = thin_points(bone, 1.0)
    centre = us_thin.mean(axis=0)
    T_init = perturbation(rng, centre, 10.0, 10.0) @ T_base_spine
    T_est, icp = register_cbct_to_us(surf.points_mm, surf.normals, us_thin, T_init)
    rot_deg, trans_mm = transform_errors(T_est, T_base_spine, centre)
    timings["registration_s"] = time.perf_counter() - t

    # --- level split + completion ----------------------------------------------------------
    t = time.perf_counter()
    completer = SpineCompleter(
        model_full, model_us_only, n_samples=n_samples, us_snap_mm=us_snap_mm
    )
    prior = PatientPrior(T_base_spine[:3, 2], T_base_spine[:3, 1])
    result = completer.complete(bone, prior, xray_base)
    timings["completion_s"] = time.perf_counter() - t
    true_level = _nearest_level(spine, apply_transform(T_spine_base, result.points_mm))
    labelled = result.point_level > 0
    split_acc = _frac(result.point_level[labelled] == true_level[labelled])

    gt_spine = {lv: sample_surface(v, 8192, seed=lv) for lv, v in spine.vertebrae.items()}
    gt_base = {lv: apply_transform(T_base_spine, g[0]) for lv, g in gt_spine.items()}
    gt_part = {lv: g[1] for lv, g in gt_spine.items()}
    completed = {lc.level: lc.points_mm for lc in result.levels if len(lc.points_mm)}
    scores = score_levels(completed, gt_base, gt_part)

    curve = []
    for mm, deg in xray_shifts:
        res = completer.complete(bone, prior, shifted_xray(mm, deg))
        sc = score_levels(
            {lc.level: lc.points_mm for lc in res.levels if len(lc.points_mm)}, gt_base, gt_part
        )
        curve.append(
            {
                "xray_shift_mm": mm,
                "xray_shift_deg": deg,
                "cd_l1_mm": float(np.mean([v["cd_l1_mm"] for v in sc.values()])),
                "status": {f"L{lc.level}": lc.status for lc in res.levels},
            }
        )

    gt_own = {lv: g[0] for lv, g in gt_spine.items()}
    partials = simulate_us_partials(spine, seed=seed)
    xrays = xray_points_25d(spine, jitter_seed=seed)
    ideal_us = {lv: p.points_mm for lv, p in partials.items()}
    # The simulator's partials see a little of the vertebral body beside the arch; the
    # robot sweep's bone points do not: the same partials without those hits, too.
    no_body_us = {lv: p.points_mm[p.hit_part != Part.BODY] for lv, p in partials.items()}
    body_share = float(
        np.mean(np.concatenate([p.hit_part == Part.BODY for p in partials.values()]))
    )
    ideal = _ideal_completion(ideal_us, xrays, model_full, us_snap_mm)
    ideal_scores = score_levels(ideal, gt_own, gt_part)
    no_body_scores = score_levels(
        _ideal_completion(no_body_us, xrays, model_full, us_snap_mm), gt_own, gt_part
    )

    def mean_cd(sc: dict) -> float:
        return float(np.mean([v["cd_l1_mm"] for v in sc.values()])) if sc else float("nan")

    report = {
        "spine_id": spine.spine_id,
        "frames": int(plan.n_frames),
        "us_snap_mm": us_snap_mm,
        "bone_points": {
            "n": len(bone),
            "median_mm": float(np.median(dist)),
            "within_1mm": _frac(dist <= 1.0),
            "recall_1mm": recall,
            "frames_placed": sweep.frames_placed,
            "frames_dropped": dict(sweep.dropped),
            "frames_partial_contact": sweep.partial_contact,
            "breathing": breathing,
        },
        "conditions": cond.as_dict()
        | {
            "frames_with_air": int(np.count_nonzero(frames.disturbed.air_share)),
            "frames_off_skin": int(np.count_nonzero(np.abs(frames.disturbed.air_share) >= 1.0)),
            "calibration": None if calibration is None else str(calibration),
        },
        "registration": {
            "cbct_us": {
                "trans_mm": trans_mm,
                "rot_deg": rot_deg,
                "converged": bool(icp.converged),
                "initial": {"trans_mm": 10.0, "rot_deg": 10.0},
            }
        },
        "xray": {
            "lateral_error_mm": float(np.mean(lateral_err)),
            "lateral_error_max_mm": float(np.max(lateral_err)),
            "levels": sorted(xray_base),
        },
        "level_split": {"accuracy": split_acc, "points": int(labelled.sum())},
        "completion": {
            "cd_l1_mm": mean_cd(scores),
            "per_level": {f"L{lv}": s for lv, s in scores.items()},
            "status": {f"L{lc.level}": lc.status for lc in result.levels},
            "confidence": {f"L{lc.level}": lc.confidence for lc in result.levels},
            "quality": json_safe({f"L{lc.level}": lc.quality for lc in result.levels}),
        },
        "completion_ideal": {
            "cd_l1_mm": mean_cd(ideal_scores),
            "per_level": {f"L{lv}": s for lv, s in ideal_scores.items()},
            "body_hit_share": body_share,
        },
        "completion_ideal_no_body": {
            "cd_l1_mm": mean_cd(no_body_scores),
            "per_level": {f"L{lv}": s for lv, s in no_body_scores.items()},
        },
        "timings_s": timings,
    }
    if curve:
        report["xray_shift_curve"] = curve
    return OfflineResult(report, bone, completed, gt_base, result.R_base_lps, result)


def _used_calibration(
    truth: ProbeCalibration, cond: ChainConditions, seed: int, path: str | Path | None
) -> ProbeCalibration:
    """The calibration the compounding believes: a file, or the truth with the error."""
    if path is not None:
        return load_probe_calibration(path)
    rng = condition_rng(seed, "calib_error")
    return perturbed_calibration(truth, rng, cond.calib_error_mm, cond.calib_error_deg)


@dataclass(frozen=True)
class _Frames:
    """The frames as acquired: breathing and air per frame, stamps as sent."""

    disturbed: FrameDisturbances
    stamps_ns: np.ndarray


def _disturbed_frames(plan, cond: ChainConditions, seed: int) -> _Frames:
    """Breathing and lost contact (``sim.conditions``); the clock offset moves stamps."""
    stamps = EPOCH_NS + plan.frame_times_ns - round(cond.time_offset_ms * 1e6)
    return _Frames(frame_disturbances(plan.frame_times_ns, cond, seed), stamps)


def _recall(gt_points: np.ndarray, found: np.ndarray, tol_mm: float) -> float:
    """Fraction of GT visible-surface points with a segmented point within ``tol_mm``."""
    from scipy.spatial import cKDTree

    if len(gt_points) == 0:
        return float("nan")
    if len(found) == 0:
        return 0.0
    d, _ = cKDTree(found).query(gt_points, distance_upper_bound=tol_mm)
    return _frac(np.isfinite(d))


def _nearest_level(spine: Spine, points_spine_mm: np.ndarray) -> np.ndarray:
    """Level of the vertebra whose surface is nearest to each point (spine frame)."""
    import open3d as o3d

    levels = spine.levels
    dist = np.empty((len(levels), len(points_spine_mm)))
    q = o3d.core.Tensor(points_spine_mm.astype(np.float32))
    for i, lv in enumerate(levels):
        v = spine.vertebrae[lv]
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(v.vertices_mm.astype(np.float32)),
            o3d.core.Tensor(v.faces.astype(np.uint32)),
        )
        dist[i] = scene.compute_distance(q).numpy()
    return np.asarray(levels)[np.argmin(dist, axis=0)]


def _ideal_completion(
    us_mm: dict[int, np.ndarray],
    xrays_mm: dict[int, np.ndarray],
    model: USXComplete,
    us_snap_mm: float = 0.0,
) -> dict[int, np.ndarray]:
    """The network on per-level partials and X-ray points (spine frame, as in training),
    then the same US surface consistency as the pipeline's (``us_snap_mm``)."""
    levels = sorted(us_mm)
    out = complete(
        [us_mm[lv] for lv in levels],
        [xrays_mm[lv] for lv in levels],
        [f"L{lv}" for lv in levels],
        model,
        n_samples=0,
    )
    return {
        lv: snap_to_us_surface(out.points_mm[i], us_mm[lv], us_snap_mm)
        for i, lv in enumerate(levels)
    }
