"""Single-wall spatial calibration: recovers a known calibration, flags a degenerate sweep."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import invert_transform, transform_from_xyz_rpy
from usx_model.calibration.plate_line import detect_plate_line
from usx_model.calibration.spatial import calibrate_spatial
from usx_model.sim.conditions import calibration_error
from usx_model.sim.plate import PlateScene, spatial_poses, translation_only_poses
from usx_model.sim.probe import ProbeModel
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration

PROBE = ProbeModel(shape=(384, 256), pixel_mm=0.2, width_mm=40.0)
TRUTH = ProbeCalibration(
    ImageCalibration.centred_on_face(256, (0.2, 0.2)),
    transform_from_xyz_rpy([3.0, -2.0, 140.0], [1.0, -2.0, 30.0]),
)
T_BASE_PLATE = transform_from_xyz_rpy([600.0, 50.0, 10.0], [2.0, -1.0, 20.0])


def _observe(poses):
    scene = PlateScene(PROBE, seed=3)
    T_base_ee, lines = [], []
    for T in poses:
        line = detect_plate_line(scene.render(T))
        if line is not None:
            T_base_ee.append(T_BASE_PLATE @ T @ invert_transform(TRUTH.T_ee_probe))
            lines.append(line.uv_px)
    return np.stack(T_base_ee), lines


def _initial(mm=3.0, deg=3.0, pct=5.0):
    error = calibration_error(np.random.default_rng(7), mm, deg)
    spacing = (0.2 * (1 + pct / 100), 0.2 * (1 - pct / 100))
    return ProbeCalibration(
        ImageCalibration(spacing, TRUTH.image.origin_px), TRUTH.T_ee_probe @ error
    )


def test_recovers_the_calibration_from_a_3mm_3deg_5pct_start():
    T_base_ee, lines = _observe(spatial_poses(np.random.default_rng(0), 24))
    res = calibrate_spatial(T_base_ee, lines, _initial())
    assert res.converged, res.warnings
    Te, Tt = res.T_ee_image, TRUTH.T_ee_image
    assert np.linalg.norm(Te[:3, 3] - Tt[:3, 3]) < 0.05
    assert np.degrees(Rotation.from_matrix(Te[:3, :3] @ Tt[:3, :3].T).magnitude()) < 0.05
    np.testing.assert_allclose(res.spacing_mm, (0.2, 0.2), rtol=1e-3)
    # the plate it found is the true one: normal and distance in the base frame
    n_true = T_BASE_PLATE[:3, 2]
    assert abs(abs(res.plane[:3] @ n_true) - 1) < 1e-5
    assert abs(abs(res.plane[3]) - abs(n_true @ T_BASE_PLATE[:3, 3])) < 0.05
    np.testing.assert_allclose(res.calibration.T_ee_image, Te, atol=1e-9)
    assert res.residual_mm["rms"] < 0.05


def test_translations_alone_do_not_determine_it():
    T_base_ee, lines = _observe(translation_only_poses(np.random.default_rng(0), 24))
    res = calibrate_spatial(T_base_ee, lines, _initial())
    assert not res.converged
    assert any("not determined by this sweep" in w for w in res.warnings)


def test_lines_from_another_plate_do_not_fit():
    T_base_ee, lines = _observe(spatial_poses(np.random.default_rng(0), 24))
    T_base_ee[::2, 2, 3] += 5.0  # half the frames from a plate 5 mm higher
    res = calibrate_spatial(T_base_ee, lines, _initial())
    assert not res.converged
    assert any("RMS residual" in w for w in res.warnings)


@pytest.mark.parametrize(
    ("n_poses", "n_lines", "message"),
    [(5, 5, "at least 11 frames"), (12, 11, "expected \\(F, 4, 4\\) poses and F lines")],
)
def test_bad_input(n_poses, n_lines, message):
    lines = [np.array([[0.0, 10.0], [10.0, 10.0]])] * n_lines
    with pytest.raises(ValueError, match=message):
        calibrate_spatial(np.tile(np.eye(4), (n_poses, 1, 1)), lines, _initial())
