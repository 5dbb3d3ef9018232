"""End-to-end: simulated frames of a roof-shaped bone, segmented and measured in 3D."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.evaluation.segmentation import (
    SegmentationAccuracy,
    SweepMeasures,
    evaluate_sweep,
    measure_sweep,
    simulator_calibration,
    spine_distance_scene,
    surface_distance_mm,
    sweep_points,
)
from usx_model.segmentation.bone import BoneSegmentation, BoneSegParams, segment_bone
from usx_model.sim.bmode import BModeSimulator
from usx_model.sim.probe import R_SPINE_PROBE_TRANSVERSE, ProbeModel

PROBE = ProbeModel(shape=(256, 192), pixel_mm=0.15, width_mm=28.0)
PARAMS = BoneSegParams(pixel_mm=(0.15, 0.15))


def _poses(zs=(-10.0, 0.0, 10.0), x=(0.0, 3.0, -4.0), y=20.0) -> np.ndarray:
    T = np.tile(np.eye(4), (len(zs), 1, 1))
    T[:, :3, :3] = R_SPINE_PROBE_TRANSVERSE
    T[:, 0, 3], T[:, 1, 3], T[:, 2, 3] = x, y, zs
    return T


@pytest.fixture(scope="module")
def sweep(ridge_spine):
    frames = BModeSimulator(ridge_spine, PROBE, seed=11).render_sweep(_poses())
    return frames, [segment_bone(f.image, PARAMS) for f in frames]


def test_segmentation_matches_the_ground_truth_mask(sweep):
    frames, segs = sweep
    for frame, seg in zip(frames, segs, strict=True):
        gt_cols = np.flatnonzero(frame.bone_mask.any(axis=0))
        gt_row = np.argmax(frame.bone_mask, axis=0)
        u = seg.u_px.astype(int)
        assert set(u) <= set(gt_cols)  # no bone where there is none
        assert len(u) >= 0.95 * len(gt_cols)
        assert np.percentile(np.abs(seg.v_px - gt_row[u]), 95) <= 1.0


def test_ground_truth_pixels_map_onto_the_mesh(ridge_spine, sweep):
    frames, segs = sweep
    _, gt, _ = sweep_points(frames, segs, simulator_calibration(PROBE))
    # half a pixel of depth quantisation plus the scanline-to-column offset
    assert surface_distance_mm(spine_distance_scene(ridge_spine), gt).max() <= 0.12


def test_accuracy_meets_the_issue_targets(ridge_spine, sweep):
    frames, segs = sweep
    acc = evaluate_sweep(ridge_spine, frames, segs, PROBE)
    assert acc.n_frames == 3 and acc.n_points > 0.95 * acc.n_gt_points
    assert acc.median_distance_mm <= 0.1
    assert acc.within_1mm >= 0.99 and acc.recall_1mm >= 0.95
    assert acc.false_frames == 0 and acc.meets_targets()


def test_a_wrong_depth_is_measured_as_distance(ridge_spine, sweep):
    frames, segs = sweep
    shifted = [
        BoneSegmentation(s.u_px, s.v_px + 10.0, s.confidence, s.shape) for s in segs
    ]  # 1.5 mm deeper along the beam; the roof slopes 30 deg: 1.5 * cos(30) to the surface
    acc = evaluate_sweep(ridge_spine, frames, shifted, PROBE)
    assert acc.median_distance_mm == pytest.approx(1.5 * np.cos(np.deg2rad(30.0)), abs=0.1)
    assert acc.recall_1mm < 0.1 and not acc.meets_targets()


def test_measures_pool_point_by_point(ridge_spine, sweep):
    frames, segs = sweep
    one = measure_sweep(ridge_spine, frames[:1], segs[:1], PROBE)
    two = measure_sweep(ridge_spine, frames[1:], segs[1:], PROBE)
    pooled = SweepMeasures.concat([one, two]).summary()
    whole = evaluate_sweep(ridge_spine, frames, segs, PROBE)
    assert pooled == whole


def test_empty_segmentation_has_zero_recall(ridge_spine, sweep):
    frames, _ = sweep
    empty = [BoneSegmentation(np.zeros(0), np.zeros(0), np.zeros(0), PROBE.shape)] * 3
    acc = evaluate_sweep(ridge_spine, frames, empty, PROBE)
    assert acc.n_points == 0 and acc.recall_1mm == 0.0 and np.isnan(acc.median_distance_mm)


@pytest.mark.parametrize(
    ("median", "within", "recall", "ok"),
    [
        (0.5, 0.9, 0.7, True),
        (0.51, 0.95, 0.9, False),
        (0.2, 0.89, 0.9, False),
        (0.2, 0.95, 0.69, False),
    ],
)
def test_targets(median, within, recall, ok):
    acc = SegmentationAccuracy(1, 1, 1, median, 1.0, within, recall, 0)
    assert acc.meets_targets() is ok


def test_mismatched_lengths_are_rejected(sweep):
    frames, segs = sweep
    with pytest.raises(ValueError, match="expected one segmentation per frame, got 2 for 3"):
        sweep_points(frames, segs[:2], simulator_calibration(PROBE))
