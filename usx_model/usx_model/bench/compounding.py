"""``usx bench compounding``: per-frame cost of tracking + compounding 2D frames.

Simulates a sweep: iiwa 14 joint states at ``--pose-rate-hz`` (forward kinematics, pose
buffer), B-mode frames at ``--frame-rate-hz``; per frame it times the pose lookup
(interpolation), the pixel -> base chain, the bone segmentation (with its base-frame
points), the insertion into the volume and the per-level coverage update (each frame's bone
points into ``levels.coverage.LevelCoverage`` over five bands along the sweep; the fractions
every ``--coverage-every`` frames, as the RecordSweep feedback reads them every 0.2 s) and
the thinning of the sweep's bone points as they come (``base.points.ThinnedCloud``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from usx_model.base.points import THIN_VOXEL_MM, ThinnedCloud
from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.compounding.insert import Compounder, insert_stride
from usx_model.compounding.masks import fan_mask, rectangle_mask
from usx_model.compounding.volume import CompoundingMode, VolumeGrid, volume_nbytes
from usx_model.levels.coverage import LevelBands, LevelCoverage, level_bands
from usx_model.segmentation.bone import BoneSegParams, segment_bone
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration, base_pixel_transform
from usx_model.tracking.iiwa import forward_kinematics
from usx_model.tracking.interpolation import PoseBuffer

NAME = "compounding"
HELP = "per-frame time of pose lookup + bone segmentation + insertion of B-mode frames"

# A wrist-down configuration over the table, and the joint motion of the sweep around it.
_Q_START_DEG = np.array([-8.0, 50.0, 0.0, -80.0, 0.0, 50.0, 0.0])
_Q_END_DEG = np.array([8.0, 50.0, 0.0, -80.0, 0.0, 50.0, 0.0])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=200, help="frames to time (default 200)")
    parser.add_argument("--size", type=int, default=512, help="frame rows = columns (default 512)")
    parser.add_argument(
        "--pixel-spacing-mm", type=float, default=0.15, help="image spacing, mm/px (default 0.15)"
    )
    parser.add_argument("--voxel-mm", type=float, default=0.5, help="voxel size (default 0.5)")
    parser.add_argument(
        "--mode",
        choices=[m.value for m in CompoundingMode],
        default="mean",
        help="compounding mode (default mean)",
    )
    parser.add_argument(
        "--mask", choices=["fan", "rectangle"], default="fan", help="valid-pixel mask (default fan)"
    )
    parser.add_argument(
        "--pixel-stride",
        type=int,
        default=0,
        help="insert every n-th row and column (default 0: as the node, insert_stride)",
    )
    parser.add_argument(
        "--coverage-every",
        type=int,
        default=6,
        help="frames between two coverage fractions (default 6: the feedback's 0.2 s at 30 Hz)",
    )
    parser.add_argument("--frame-rate-hz", type=float, default=30.0, help="image rate (default 30)")
    parser.add_argument(
        "--pose-rate-hz", type=float, default=100.0, help="joint-state rate (default 100)"
    )


def _sweep_poses(n_poses: int) -> np.ndarray:
    """(n, 4, 4) flange poses along the joint-space line from start to end, mm."""
    s = np.linspace(0.0, 1.0, n_poses)[:, None]
    q = np.deg2rad(_Q_START_DEG + s * (_Q_END_DEG - _Q_START_DEG))
    return forward_kinematics(q)


def run(args: argparse.Namespace) -> dict:
    if args.frames < 2 or args.size < 2:
        raise ValueError(f"expected --frames >= 2 and --size >= 2, got {args.frames}, {args.size}")
    if args.coverage_every < 1:
        raise ValueError(f"expected --coverage-every >= 1, got {args.coverage_every}")
    duration_s = args.frames / args.frame_rate_hz
    n_poses = int(np.ceil(duration_s * args.pose_rate_hz)) + 2
    pose_stamps_ns = (np.arange(n_poses) * 1e9 / args.pose_rate_hz).astype(np.int64)
    t0 = time.perf_counter()
    T_base_ee = _sweep_poses(n_poses)
    fk_ms_per_pose = (time.perf_counter() - t0) * 1e3 / n_poses

    shape = (args.size, args.size)
    image_cal = ImageCalibration.centred_on_face(args.size, (args.pixel_spacing_mm,) * 2)
    calibration = ProbeCalibration(
        image=image_cal, T_ee_probe=transform_from_xyz_rpy([0, 0, 150], [0, 0, 0])
    )
    depth_mm = args.size * args.pixel_spacing_mm
    if args.mask == "fan":
        mask = fan_mask(shape, image_cal, (0.0, -20.0), (20.0, 20.0 + depth_mm), 35.0)
    else:
        mask = rectangle_mask(shape)

    # grid: bounding box of every frame's corners over the sweep
    corners = np.array([[0, 0], [args.size - 1, 0], [0, args.size - 1], [args.size - 1] * 2])
    T_all = base_pixel_transform(T_base_ee, calibration)
    pts = np.einsum("nij,kj->nki", T_all[:, :3, [0, 1, 3]], np.c_[corners, np.ones(4)])
    grid = VolumeGrid.from_bounds(pts.min(axis=(0, 1)), pts.max(axis=(0, 1)), args.voxel_mm)
    stride = args.pixel_stride or insert_stride((args.pixel_spacing_mm,) * 2, args.voxel_mm)
    compounder = Compounder(
        grid,
        shape,
        CompoundingMode(args.mode),
        mask,
        memory_budget_bytes=4 << 30,
        pixel_stride=stride,
    )

    coverage = LevelCoverage(_bands_along(T_all, args.size))
    buffer = PoseBuffer(capacity=n_poses, tolerance_s=2.0 / args.pose_rate_hz)
    for stamp, T in zip(pose_stamps_ns, T_base_ee, strict=True):
        buffer.add_transform(int(stamp), T)

    images = _frames(shape, args.pixel_spacing_mm)  # real B-mode content, cycled
    seg_params = BoneSegParams(pixel_mm=(args.pixel_spacing_mm,) * 2)
    frame_stamps_ns = (np.arange(args.frames) * 1e9 / args.frame_rate_hz).astype(np.int64) + 1
    lookup_s, seg_s, insert_s, coverage_s, thin_s, total_s = [], [], [], [], [], []
    thinned = ThinnedCloud(THIN_VOXEL_MM)  # the node's bone points, thinned as they come
    # One thread, as in the compounding node: per-frame work is too small to split, and
    # BLAS/OpenMP pools spinning on a busy 2-core machine cost more than they give.
    limiter = threadpool_limits(limits=1)
    for i, stamp in enumerate(frame_stamps_ns):
        image = images[i % len(images)]
        t_start = time.perf_counter()
        hit = buffer.lookup(int(stamp))
        if not hit.valid:
            continue
        T_base_pixel = base_pixel_transform(hit.T_base_ee, calibration)
        t_lookup = time.perf_counter()
        bone_mm = segment_bone(image, seg_params).to_base(T_base_pixel)
        t_seg = time.perf_counter()
        compounder.insert(image, T_base_pixel)
        t_insert = time.perf_counter()
        coverage.add(bone_mm)
        if i % args.coverage_every == 0:
            coverage.fractions()
        t_coverage = time.perf_counter()
        thinned.add(bone_mm)
        t_end = time.perf_counter()
        lookup_s.append(t_lookup - t_start)
        seg_s.append(t_seg - t_lookup)
        insert_s.append(t_insert - t_seg)
        coverage_s.append(t_coverage - t_insert)
        thin_s.append(t_end - t_coverage)
        total_s.append(t_end - t_start)

    limiter.restore_original_limits()

    def ms(values: list[float]) -> float:
        return statistics.median(values) * 1e3

    return {
        "median_ms_per_frame": ms(total_s),
        "p90_ms_per_frame": float(np.percentile(total_s, 90) * 1e3),
        "median_lookup_ms": ms(lookup_s),
        "median_segmentation_ms": ms(seg_s),
        "median_insert_ms": ms(insert_s),
        "median_coverage_ms": ms(coverage_s),
        "mean_coverage_ms": statistics.mean(coverage_s) * 1e3,
        "median_thinning_ms": ms(thin_s),
        "coverage_fractions": {f"L{k}": round(v, 3) for k, v in coverage.fractions().items()},
        "fk_ms_per_pose": fk_ms_per_pose,
        "frames_timed": len(total_s),
        "frames_dropped": int(args.frames - len(total_s)),
        "pixels_per_frame": int(mask.sum()),
        "image_shape": list(shape),
        "mode": args.mode,
        "mask": args.mask,
        "grid_shape": list(grid.shape),
        "voxel_mm": args.voxel_mm,
        "pixel_stride": stride,
        "volume_mib": volume_nbytes(grid, CompoundingMode(args.mode)) / 2**20,
        "included": [
            "pose lookup (slerp)",
            "pixel->base chain",
            "bone segmentation -> base-frame points",
            "insertion",
            "per-level coverage update",
            "bone points thinned as they come",
        ],
    }


def _bands_along(T_base_pixel: np.ndarray, size: int) -> LevelBands:
    """Five level bands along the sweep: body centroids 35 mm apart on the path of the
    image's centre column, 40 mm deep, lateral along the image rows (base frame, mm)."""
    centre = T_base_pixel[:, :3, :] @ np.array([size / 2.0, size / 2.0, 0.0, 1.0])
    path = centre[-1] - centre[0]
    path /= np.linalg.norm(path)
    mid = centre.mean(axis=0)
    bodies = {lv: (mid + (3 - lv) * 35.0 * path)[None, :] for lv in range(1, 6)}
    lateral = T_base_pixel[0, :3, 0] / np.linalg.norm(T_base_pixel[0, :3, 0])
    return level_bands(bodies, lateral)


def _frames(shape: tuple[int, int], pixel_mm: float) -> np.ndarray:
    """(8, rows, cols) simulated B-mode frames over a phantom spine (bone in view)."""
    from usx_model.sim.bmode import BModeSimulator
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.sim.probe import ProbeModel, sweep_poses

    spine = generate_spine(0)
    probe = ProbeModel(shape=shape, pixel_mm=pixel_mm)
    sim = BModeSimulator(spine, probe, seed=0)
    return np.stack([sim.render(T).image for T in sweep_poses(spine, 8)])
