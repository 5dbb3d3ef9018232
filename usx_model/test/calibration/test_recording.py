"""From a planned calibration motion to estimates: still frames, joints, both estimators."""

import numpy as np
import pytest

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.calibration.plate_line import detect_plate_line
from usx_model.calibration.recording import (
    joints_at,
    spatial_from_recording,
    still_frames,
    temporal_from_recording,
)
from usx_model.sim.calibration_scene import plan_calibration_scene
from usx_model.sim.plate import PlateScene
from usx_model.sim.probe import ProbeModel
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration

PROBE = ProbeModel(shape=(384, 256), pixel_mm=0.2, width_mm=40.0)
TRUTH = ProbeCalibration(
    ImageCalibration.centred_on_face(256, (0.2, 0.2)),
    transform_from_xyz_rpy([0.0, 0.0, 150.0], [0.0, 0.0, 0.0]),
)


def _lines(scene):
    plate = PlateScene(PROBE, seed=0)
    return [detect_plate_line(plate.render(T)) for T in scene.T_plate_probe]


def test_still_frames_are_the_dwells():
    t = np.arange(0, 300) * 10_000_000  # 100 Hz, 3 s
    q = np.zeros((300, 7))
    q[100:200, 0] = np.linspace(0, 0.3, 100)  # moves from 1 s to 2 s
    q[200:, 0] = 0.3
    frames = np.array([0.5, 0.95, 1.5, 2.1, 2.5, 2.95]) * 1e9
    np.testing.assert_array_equal(
        still_frames(frames, t, q), [True, False, False, False, True, False]
    )
    np.testing.assert_allclose(joints_at([1.5e9], t, q)[0, 0], 0.15, atol=0.002)


def test_spatial_and_temporal_from_planned_scenes():
    spatial = plan_calibration_scene("spatial", 4, TRUTH.T_ee_probe, n_poses=16)
    initial = ProbeCalibration(
        ImageCalibration((0.21, 0.19), TRUTH.image.origin_px),
        TRUTH.T_ee_probe @ transform_from_xyz_rpy([2.0, -2.0, 1.0], [2.0, -1.0, 2.0]),
    )
    res, counts = spatial_from_recording(
        spatial.joint_times_ns,
        spatial.joint_positions_rad,
        spatial.frame_times_ns,
        _lines(spatial),
        initial,
    )
    assert res.converged and counts["used"] >= 16
    assert np.linalg.norm(res.T_ee_image[:3, 3] - TRUTH.T_ee_image[:3, 3]) < 0.05
    np.testing.assert_allclose(res.spacing_mm, (0.2, 0.2), rtol=1e-3)

    temporal = plan_calibration_scene(
        "temporal", 4, TRUTH.T_ee_probe, frame_rate_hz=30.0, heave_s=4.0
    )
    lines = _lines(temporal)
    stamps = temporal.frame_times_ns - 25_000_000  # images stamped 25 ms early
    res_t = temporal_from_recording(
        temporal.joint_times_ns, temporal.joint_positions_rad, stamps, lines, 127.5
    )
    assert res_t.converged and res_t.offset_ms == pytest.approx(25.0, abs=0.5)


def test_unknown_scene_kind():
    with pytest.raises(ValueError, match="calibration scene kind"):
        plan_calibration_scene("helical", 0, TRUTH.T_ee_probe)


@pytest.mark.parametrize(
    ("t", "q", "message"),
    [
        (np.arange(5), np.zeros((5, 6)), "\\(J, 7\\) angles"),
        (np.array([0, 2, 1]), np.zeros((3, 7)), "increasing stamps"),
    ],
)
def test_bad_joints(t, q, message):
    with pytest.raises(ValueError, match=message):
        still_frames(np.array([1]), t, q)
