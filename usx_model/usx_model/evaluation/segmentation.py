"""Accuracy of the bone segmentation on simulated sweeps, in 3D, against ground truth.

Two figures, both in the spine frame (the simulator's base), millimetres:

- **precision**: distance of every segmented 3D bone point to the true bone surface
  (the spine mesh, open3d ``RaycastingScene.compute_distance``): median and fraction
  within 1 mm;
- **recall**: the US-visible ground-truth surface is the set of 3D points of the
  simulator's ground-truth bone masks (first bone hit per scanline); recall is the
  fraction of them with a segmented point within 1 mm (any frame of the sweep).

Pixels map to 3D through the project's calibration chain (``tracking.calibration``):
``T_spine_pixel = T_spine_probe @ T_probe_image @ T_image_pixel``. The simulator puts
column c at lateral ``(c - (cols - 1) / 2) * pixel_mm`` and row r at depth
``(r + 0.5) * pixel_mm`` (``simulate.probe``), i.e. image origin at pixel
``((cols - 1) / 2, -0.5)``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import open3d as o3d
from scipy.spatial import cKDTree

from usx_model.compounding.points import mask_to_base_points
from usx_model.segmentation.bone import BoneSegmentation
from usx_model.sim.bmode import BModeFrame
from usx_model.sim.phantom.types import Spine
from usx_model.sim.probe import ProbeModel
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration


def simulator_calibration(probe: ProbeModel) -> ProbeCalibration:
    """Probe calibration matching ``simulate.probe``'s image geometry (flange = probe)."""
    cols = probe.shape[1]
    image = ImageCalibration.centred_on_face(cols, (probe.pixel_mm, probe.pixel_mm))
    return ProbeCalibration(image=image)


def T_spine_pixel(T_spine_probe: np.ndarray, calibration: ProbeCalibration) -> np.ndarray:
    """(4, 4) affine: homogeneous pixel (u, v, 0, 1) of a frame -> spine frame, mm."""
    return np.asarray(T_spine_probe, dtype=np.float64) @ calibration.T_ee_pixel


@dataclass
class SegmentationAccuracy:
    """Figures of one or more sweeps (distances in mm).

    Attributes:
        n_frames: frames evaluated.
        n_points: segmented 3D points.
        n_gt_points: ground-truth visible-surface points.
        median_distance_mm: median distance of segmented points to the mesh (nan if none).
        p90_distance_mm: 90th percentile of that distance (nan if none).
        within_1mm: fraction of segmented points within 1 mm of the mesh (nan if none).
        recall_1mm: fraction of ground-truth points with a segmented point within 1 mm
            (nan if there is no ground truth).
        false_frames: frames without ground-truth bone where bone was segmented.
    """

    n_frames: int
    n_points: int
    n_gt_points: int
    median_distance_mm: float
    p90_distance_mm: float
    within_1mm: float
    recall_1mm: float
    false_frames: int

    def as_dict(self) -> dict:
        return asdict(self)

    def meets_targets(self) -> bool:
        """Issue 5 targets: median <= 0.5 mm, >= 90 % within 1 mm, recall >= 70 %."""
        return self.median_distance_mm <= 0.5 and self.within_1mm >= 0.9 and self.recall_1mm >= 0.7


def spine_distance_scene(spine: Spine) -> o3d.t.geometry.RaycastingScene:
    """Ray-casting scene of all vertebrae, for point-to-surface distances (mm)."""
    scene = o3d.t.geometry.RaycastingScene()
    for level in spine.levels:
        vert = spine.vertebrae[level]
        scene.add_triangles(
            o3d.core.Tensor(np.asarray(vert.vertices_mm, dtype=np.float32)),
            o3d.core.Tensor(np.asarray(vert.faces, dtype=np.uint32)),
        )
    return scene


def surface_distance_mm(scene: o3d.t.geometry.RaycastingScene, points_mm: np.ndarray) -> np.ndarray:
    """(N,) unsigned distance of (N, 3) points to the scene's surface, mm."""
    pts = np.asarray(points_mm, dtype=np.float32).reshape(-1, 3)
    if len(pts) == 0:
        return np.zeros(0)
    return scene.compute_distance(o3d.core.Tensor(pts)).numpy().astype(np.float64)


def sweep_points(
    frames: list[BModeFrame],
    segmentations: list[BoneSegmentation],
    calibration: ProbeCalibration,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Segmented and ground-truth 3D points of a sweep (spine frame, mm).

    Returns:
        (segmented (K, 3), ground truth (G, 3), number of frames without ground-truth
        bone in which bone was segmented).
    """
    if len(frames) != len(segmentations):
        raise ValueError(
            f"expected one segmentation per frame, got {len(segmentations)} for {len(frames)}"
        )
    seg_pts, gt_pts, false_frames = [], [], 0
    for frame, seg in zip(frames, segmentations, strict=True):
        T = T_spine_pixel(frame.T_spine_probe, calibration)
        seg_pts.append(seg.to_base(T))
        gt_pts.append(mask_to_base_points(frame.bone_mask, T))
        false_frames += int(len(seg.u_px) > 0 and not frame.bone_mask.any())
    return np.vstack(seg_pts), np.vstack(gt_pts), false_frames


@dataclass
class SweepMeasures:
    """Raw per-point measures of one or more sweeps, to summarise or pool.

    Attributes:
        distance_mm: (K,) distance of each segmented point to the mesh.
        gt_found: (G,) bool, ground-truth point with a segmented point within 1 mm.
        n_frames: frames.
        false_frames: frames without ground-truth bone where bone was segmented.
    """

    distance_mm: np.ndarray
    gt_found: np.ndarray
    n_frames: int
    false_frames: int

    @classmethod
    def concat(cls, parts: list[SweepMeasures]) -> SweepMeasures:
        """Pool several sweeps (every point counts once)."""
        return cls(
            np.concatenate([m.distance_mm for m in parts]),
            np.concatenate([m.gt_found for m in parts]),
            sum(m.n_frames for m in parts),
            sum(m.false_frames for m in parts),
        )

    def summary(self) -> SegmentationAccuracy:
        d, nan = self.distance_mm, float("nan")
        return SegmentationAccuracy(
            n_frames=self.n_frames,
            n_points=len(d),
            n_gt_points=len(self.gt_found),
            median_distance_mm=float(np.median(d)) if len(d) else nan,
            p90_distance_mm=float(np.percentile(d, 90)) if len(d) else nan,
            within_1mm=float(np.mean(d <= 1.0)) if len(d) else nan,
            recall_1mm=float(np.mean(self.gt_found)) if len(self.gt_found) else nan,
            false_frames=self.false_frames,
        )


def measure_sweep(
    spine: Spine,
    frames: list[BModeFrame],
    segmentations: list[BoneSegmentation],
    probe: ProbeModel,
    scene: o3d.t.geometry.RaycastingScene | None = None,
) -> SweepMeasures:
    """Per-point measures of per-frame segmentations of a simulated sweep of ``spine``.

    Args:
        spine: the spine that was imaged (its meshes are the truth).
        frames: simulated frames (``BModeSimulator.render_sweep``) with ground truth.
        segmentations: one result per frame (``segment_bone``).
        probe: the probe model the frames were rendered with.
        scene: a prebuilt ``spine_distance_scene(spine)`` to reuse (optional).
    """
    seg, gt, false_frames = sweep_points(frames, segmentations, simulator_calibration(probe))
    dist = surface_distance_mm(scene or spine_distance_scene(spine), seg)
    if len(gt) and len(seg):
        near, _ = cKDTree(seg).query(gt, k=1, distance_upper_bound=1.0)
        found = np.isfinite(near)
    else:
        found = np.zeros(len(gt), dtype=bool)
    return SweepMeasures(dist, found, len(frames), false_frames)


def evaluate_sweep(
    spine: Spine,
    frames: list[BModeFrame],
    segmentations: list[BoneSegmentation],
    probe: ProbeModel,
    scene: o3d.t.geometry.RaycastingScene | None = None,
) -> SegmentationAccuracy:
    """3D accuracy of per-frame segmentations of a simulated sweep (see ``measure_sweep``)."""
    return measure_sweep(spine, frames, segmentations, probe, scene).summary()
