"""Probe calibration and the pixel -> base chain, checked by hand-built geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.tracking.calibration import (
    ImageCalibration,
    ProbeCalibration,
    base_pixel_transform,
    load_probe_calibration,
    pixels_to_base,
)
from usx_model.tracking.iiwa import forward_kinematics

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("uv", "expected_image_mm"),
    [
        ((255.5, -0.5), (0.0, 0.0, 0.0)),  # probe face centre: top edge of row 0
        ((0.0, 0.0), (-255.5 * 0.2, 0.5 * 0.1, 0.0)),  # top-left pixel centre, half a row deep
        ((511.0, 99.5), (255.5 * 0.2, 100 * 0.1, 0.0)),  # right edge, 10 mm deep
    ],
)
def test_image_frame_convention(uv, expected_image_mm):
    cal = ImageCalibration.centred_on_face(512, (0.2, 0.1))
    p = cal.T_image_pixel() @ np.array([uv[0], uv[1], 0.0, 1.0])
    np.testing.assert_allclose(p[:3], expected_image_mm, atol=1e-12)


def test_default_probe_axes():
    # image x (lateral) -> probe x, image y (depth) -> probe z (beam), image z -> probe -y
    R = ProbeCalibration(ImageCalibration((0.1, 0.1), (0, 0))).T_probe_image[:3, :3]
    np.testing.assert_allclose(R, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-12)


def test_chain_with_arm_pointing_down():
    # A2 = 90 deg, A4 = 0, A6 = 90 deg: flange at x = 526 mm, z = 360 - 126 mm, z axis down
    T_base_ee = forward_kinematics(np.deg2rad([0, 90, 0, 0, 0, 90, 0]))
    np.testing.assert_allclose(T_base_ee[:3, 3], [820, 0, 234], atol=1e-9)
    np.testing.assert_allclose(T_base_ee[:3, 2], [0, 0, -1], atol=1e-12)
    cal = ProbeCalibration.from_dict(
        {
            "image": {"spacing_mm": [0.2, 0.1], "width_px": 512},
            "T_ee_probe": {"xyz_mm": [0, 0, 150], "rpy_deg": [0, 0, 0]},
        }
    )
    T = base_pixel_transform(T_base_ee, cal)
    # probe face 150 mm below the flange; depth goes down the flange z axis (-z base)
    face = pixels_to_base(np.array([[255.5, -0.5], [255.5, 199.5]]), T)
    np.testing.assert_allclose(face[0], [820, 0, 84], atol=1e-9)
    np.testing.assert_allclose(face[1], [820, 0, 84 - 20], atol=1e-9)
    # lateral goes along the flange x axis
    lateral = pixels_to_base(np.array([[355.5, -0.5]]), T)[0] - face[0]
    np.testing.assert_allclose(lateral, 20 * T_base_ee[:3, 0], atol=1e-9)


def test_chain_matches_explicit_product_batched():
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, (4, 7))
    cal = ProbeCalibration.from_dict(
        {
            "image": {"spacing_mm": [0.15, 0.12], "origin_px": [10, 3]},
            "T_ee_probe": {"xyz_mm": [1, 2, 140], "rpy_deg": [3, -2, 45]},
            "T_probe_image": {"xyz_mm": [0.5, 0, 0], "rpy_deg": [90, 0, 1]},
        }
    )
    T_base_ee = forward_kinematics(q)
    T = base_pixel_transform(T_base_ee, cal)
    uv = np.array([[0.0, 0.0], [17.0, 250.0]])
    for Ti, Te in zip(T, T_base_ee, strict=True):
        image_mm = np.c_[(uv - [10, 3]) * [0.15, 0.12], np.zeros(2), np.ones(2)]
        expected = (Te @ cal.T_ee_probe @ cal.T_probe_image @ image_mm.T).T[:, :3]
        np.testing.assert_allclose(pixels_to_base(uv, Ti), expected, atol=1e-9)


def test_dict_round_trip_and_yaml(tmp_path):
    cal = ProbeCalibration.from_dict(
        {
            "image": {"spacing_mm": [0.15, 0.12], "origin_px": [10, 3]},
            "T_ee_probe": {"xyz_mm": [1, 2, 140], "rpy_deg": [3, -2, 45]},
        }
    )
    back = ProbeCalibration.from_dict(cal.to_dict())
    np.testing.assert_allclose(back.T_ee_pixel, cal.T_ee_pixel)
    path = tmp_path / "probe.yaml"
    path.write_text(
        "probe_calibration:\n  image: {spacing_mm: [0.15, 0.12], origin_px: [10, 3]}\n"
        "  T_ee_probe: {xyz_mm: [1, 2, 140], rpy_deg: [3, -2, 45]}\n"
    )
    np.testing.assert_allclose(load_probe_calibration(path).T_ee_pixel, cal.T_ee_pixel)


def test_repository_probe_yaml_loads():
    cal = load_probe_calibration(REPO / "config" / "probe.yaml")
    assert cal.image.spacing_mm[0] > 0


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"image": {"spacing_mm": [0, 0.1], "origin_px": [0, 0]}}, "2 positive numbers"),
        ({"image": {"spacing_mm": [0.1], "origin_px": [0, 0]}}, "2 positive numbers"),
        ({"image": {"spacing_mm": [0.1, 0.1], "origin_px": [0, np.nan]}}, "origin_px as 2 finite"),
        ({"image": {"spacing_mm": [0.1, 0.1]}}, "needs spacing_mm and origin_px"),
        ({"T_ee_probe": {}}, "with an 'image' entry"),
        ({"image": {"spacing_mm": [1, 1], "width_px": 4}, "extra": 1}, "unknown probe calibration"),
        (
            {"image": {"spacing_mm": [1, 1], "width_px": 4}, "T_ee_probe": {"xyz": [0, 0, 1]}},
            "expected keys xyz_mm and rpy_deg",
        ),
        (
            {"image": {"spacing_mm": [1, 1], "width_px": 4}, "T_ee_probe": {"matrix": np.eye(3)}},
            r"T_ee_probe as a \(4, 4\) homogeneous transform, got \(3, 3\)",
        ),
        (
            {"image": {"spacing_mm": [1, 1], "width_px": 4}, "T_probe_image": 2 * np.eye(4)},
            "bottom row",
        ),
    ],
)
def test_invalid_calibration(spec, match):
    with pytest.raises(ValueError, match=match):
        ProbeCalibration.from_dict(spec)


@pytest.mark.parametrize(
    ("uv", "T", "match"),
    [
        (np.zeros((3, 3)), np.eye(4), r"expected \(K, 2\) pixel positions \(u, v\), got \(3, 3\)"),
        (np.zeros((3, 2)), np.eye(3), r"T_base_pixel of shape \(4, 4\), got \(3, 3\)"),
    ],
)
def test_invalid_pixels(uv, T, match):
    with pytest.raises(ValueError, match=match):
        pixels_to_base(uv, T)


def test_save_then_load_is_exact(tmp_path):
    from usx_model.tracking.calibration import load_probe_calibration, save_probe_calibration

    cal = ProbeCalibration(
        ImageCalibration((0.1513, 0.1497), (255.5, -0.5)),
        transform_from_xyz_rpy([1.25, -0.5, 149.75], [0.3, -1.1, 2.0]),
    )
    path = tmp_path / "probe.yaml"
    save_probe_calibration(cal, path, "estimated\nfrom a test")
    assert path.read_text().startswith("# estimated\n# from a test\nprobe_calibration:")
    back = load_probe_calibration(path)
    np.testing.assert_array_equal(back.T_ee_probe, cal.T_ee_probe)
    assert back.image == cal.image


@pytest.mark.parametrize(
    ("spacing", "xyz", "message"),
    [
        ((150.0, 150.0), (0, 0, 150), "implausible lateral pixel spacing 150.0"),
        ((0.15, 0.00015), (0, 0, 150), "implausible depth pixel spacing"),
        ((0.15, 0.15), (0, 0, 150000.0), "implausible image origin 150000 mm from the flange"),
    ],
)
def test_implausible_file_is_one_line(tmp_path, spacing, xyz, message):
    from usx_model.tracking.calibration import load_probe_calibration

    path = tmp_path / "probe.yaml"
    path.write_text(
        "probe_calibration:\n"
        f"  image: {{spacing_mm: {list(spacing)}, width_px: 512}}\n"
        f"  T_ee_probe: {{xyz_mm: {list(xyz)}, rpy_deg: [0, 0, 0]}}\n"
    )
    with pytest.raises(ValueError, match=message) as exc:
        load_probe_calibration(path)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)
