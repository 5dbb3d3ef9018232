"""BoneSweep: frames held for their bracketing pose, placed, segmented; drops counted."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.base.points import thin_points
from usx_model.compounding.bone_sweep import BoneSweep
from usx_model.compounding.volume import VolumeGrid
from usx_model.segmentation.bone import BoneSegParams
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration
from usx_model.tracking.interpolation import PoseBuffer

MS = 1_000_000
ROWS, COLS, PX = 128, 64, 0.5
BONE_ROW = 60  # echo on row 60: depth (60 + 0.5) * 0.5 mm below the probe face


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(30, 60, size=(ROWS, COLS)).astype(np.uint8)
    img[BONE_ROW : BONE_ROW + 2] = 250
    img[BONE_ROW + 2 :] = rng.integers(0, 4, size=(ROWS - BONE_ROW - 2, COLS))
    return img


def _sweep(max_pending: int = 30, thin_voxel_mm: float = 0.0) -> BoneSweep:
    cal = ProbeCalibration(ImageCalibration.centred_on_face(COLS, (PX, PX)))
    grid = VolumeGrid.from_bounds([-20, -20, -10], [20, 20, 80], 1.0)
    return BoneSweep(
        grid,
        cal,
        (ROWS, COLS),
        seg_params=BoneSegParams(pixel_mm=(PX, PX)),
        pose_buffer=PoseBuffer(tolerance_s=0.05),
        max_pending=max_pending,
        thin_voxel_mm=thin_voxel_mm,
    )


def _pose(z_mm: float) -> np.ndarray:
    T = np.eye(4)
    T[2, 3] = z_mm
    return T


def test_frame_waits_for_its_bracketing_pose_then_lands_at_the_echo_depth():
    sweep = _sweep()
    for i in range(2):
        sweep.add_pose(i * 10 * MS, _pose(0.0))
    assert sweep.add_frame(15 * MS, _frame()) == []  # newer than the newest pose: held
    reason, reports = sweep.add_pose(20 * MS, _pose(0.0))
    assert reason is None and len(reports) == 1 and reports[0].placed
    pts = sweep.bone_points_mm()
    assert len(pts) == reports[0].bone_points > COLS // 2
    # Default T_probe_image sends image depth (y) to probe z: the echo lies at z = depth.
    np.testing.assert_allclose(np.median(pts[:, 2]), (BONE_ROW + 0.5) * PX, atol=0.3)
    assert sweep.frames_placed == 1 and not sweep.dropped


def test_unplaceable_frames_are_dropped_and_counted():
    sweep = _sweep(max_pending=2)
    sweep.add_pose(100 * MS, _pose(0.0))
    sweep.add_pose(110 * MS, _pose(0.0))
    (old,) = sweep.add_frame(10 * MS, _frame())  # long before any pose
    assert not old.placed and old.reason == "no_pose"
    for t in (120, 130, 140):
        reports = sweep.add_frame(t * MS, _frame())
    assert [r.reason for r in reports] == ["pending_overflow"]
    flushed = sweep.flush()  # the sweep ended: the held frames cannot be placed any more
    assert [r.placed for r in flushed] == [False, False]
    assert sweep.dropped == {"no_pose": 3, "pending_overflow": 1}
    assert sweep.bone_points_mm().shape == (0, 3)


def _placed_digest(frames_ms: list[int], poses_ms: list[int]) -> tuple[str, int]:
    sweep = _sweep()
    for t in poses_ms:
        sweep.add_pose(t * MS, _pose(0.0))
    for t in frames_ms:
        sweep.add_frame(t * MS, _frame())
    sweep.flush()
    return sweep.placed_digest, sweep.frames_placed


def test_placed_digest_names_the_placed_frames_only():
    poses = list(range(0, 100, 10))
    same, n = _placed_digest([5, 15, 25], poses)
    assert n == 3 and len(same) == 16
    assert _placed_digest([5, 15, 25], poses)[0] == same  # the same frames, another run
    # a frame that cannot be placed leaves the digest as it was
    assert _placed_digest([5, 15, 25, 500], poses) == (same, 3)
    assert _placed_digest([5, 15], poses)[0] != same
    assert _placed_digest([5, 15, 26], poses)[0] != same
    assert _placed_digest([], poses)[0] == _placed_digest([], [])[0]


@pytest.mark.parametrize(
    "image",
    [np.zeros((ROWS, COLS + 1), np.uint8), np.zeros((ROWS, COLS), np.float32)],
)
def test_wrong_frames_are_refused(image):
    with pytest.raises(ValueError, match=r"expected a \(128, 64\) uint8 frame"):
        _sweep().add_frame(0, image)


def test_coverage_points_lie_in_the_imaged_slab():
    sweep = _sweep()
    for i in range(3):
        sweep.add_pose(i * 10 * MS, _pose(0.0))
    sweep.add_frame(10 * MS, _frame())
    cov = sweep.coverage_points_mm(stride_vox=2)
    assert len(cov) > 0
    assert np.abs(cov[:, 1]).max() <= 1.0  # the image plane is x-z (elevation is probe y)


def _air(frame: np.ndarray, columns: slice) -> np.ndarray:
    """Air under ``columns``: a reverberation line near the face over the noise floor."""
    img = frame.copy()
    img[:, columns] = 1
    img[2:3, columns] = 200
    return img


def test_frames_off_the_skin_are_dropped_and_air_columns_give_no_bone():
    sweep = _sweep()
    for i in range(4):
        sweep.add_pose(i * 10 * MS, _pose(0.0))
    (off,) = sweep.add_frame(5 * MS, _air(_frame(), slice(0, COLS)))
    assert not off.placed and off.reason == "no_contact"
    (half,) = sweep.add_frame(15 * MS, _air(_frame(), slice(COLS - 20, COLS)))
    assert half.placed and sweep.partial_contact == 1
    pts = sweep.bone_points_mm()
    # lateral x of column c is (c - (COLS - 1) / 2) * PX: nothing from the 20 air columns
    assert pts[:, 0].max() < (COLS - 20 - (COLS - 1) / 2) * PX
    assert sweep.dropped == {"no_contact": 1} and sweep.frames_placed == 1


def test_point_stamps_and_beam_direction():
    sweep = _sweep()
    for i in range(4):
        sweep.add_pose(i * 10 * MS, _pose(0.0))
    sweep.add_frame(5 * MS, _frame())
    sweep.add_frame(15 * MS, _frame())
    stamps = sweep.bone_point_stamps_ns()
    assert stamps.shape == (len(sweep.bone_points_mm()),)
    assert set(stamps.tolist()) == {5 * MS, 15 * MS}
    # default T_probe_image: image depth runs along probe (= base, here) z
    np.testing.assert_allclose(sweep.mean_beam_direction(), [0.0, 0.0, 1.0], atol=1e-12)
    assert _sweep().mean_beam_direction() is None


def test_the_points_thinned_as_frames_are_placed_are_thin_points_of_them_all():
    sweep = _sweep(thin_voxel_mm=1.0)
    for i in range(12):
        sweep.add_pose(i * 10 * MS, _pose(0.3 * i))  # frames 0.3 mm apart: shared voxels
    for i in range(11):
        sweep.add_frame(i * 10 * MS + 5 * MS, _frame())
    all_points = sweep.bone_points_mm()
    thinned = sweep.thinned_bone_points_mm()
    assert sweep.frames_placed == 11 and len(thinned) < len(all_points) // 2
    np.testing.assert_array_equal(thinned, thin_points(all_points, 1.0))
    with pytest.raises(ValueError, match="this sweep keeps no thinned points"):
        _sweep().thinned_bone_points_mm()
