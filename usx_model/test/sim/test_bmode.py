"""Tests of the probe model, sweep poses and the B-mode frame simulator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.sim.bmode import BModeFrame, BModeParams, BModeSimulator, bone_echo_recall
from usx_model.sim.probe import (
    R_SPINE_PROBE_TRANSVERSE,
    ProbeKind,
    ProbeModel,
    sweep_poses,
)

SMALL = ProbeModel(shape=(128, 96), pixel_mm=0.5, width_mm=40.0)


def _pose(x=0.0, y=30.0, z=0.0) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R_SPINE_PROBE_TRANSVERSE
    T[:3, 3] = (x, y, z)
    return T


@pytest.mark.parametrize(("face_y", "row"), [(30.2, 60), (20.1, 40), (45.7, 91)])
def test_plate_echo_lands_on_the_row_of_its_depth(make_box_spine, face_y, row):
    spine = make_box_spine((-100, -10, -100), (100, 0, 100))  # top face at y = 0
    frame = BModeSimulator(spine, SMALL, seed=0).render(_pose(y=face_y))
    rows, cols = np.nonzero(frame.bone_mask)
    # row r spans depth [r, r + 1) * pixel: floor(depth / pixel), the probe face at depth 0
    # scanlines span +-20 mm; a column belongs to the nearest one within half a spacing
    inside = np.abs((np.arange(96) - 47.5) * 0.5) <= 20.0 + 0.5 * 40.0 / 95
    np.testing.assert_array_equal(rows, row)
    np.testing.assert_array_equal(cols, np.flatnonzero(inside))
    img = frame.image.astype(float)
    tissue = img[5 : row - 3][:, inside]
    assert img[row, inside].min() > tissue.max()  # bright echo
    assert img[row + 5 :, inside].mean() < 0.5 * tissue.mean()  # acoustic shadow
    assert bone_echo_recall(frame) == 1.0


def test_echo_dims_with_incidence_angle_as_cos_power(make_box_spine, make_mesh_spine):
    import open3d as o3d

    params = BModeParams(attenuation_db_per_mm=0.0)
    levels = {}
    for deg in (0.0, 40.0):
        plate = o3d.geometry.TriangleMesh.create_box(200, 10, 200).translate((-100, -10, -100))
        plate.rotate(Rotation.from_euler("z", deg, degrees=True).as_matrix(), center=(0, 0, 0))
        frame = BModeSimulator(make_mesh_spine(plate), SMALL, params, seed=0).render(_pose())
        levels[deg] = np.median(frame.image[frame.bone_mask].astype(float))
    d, k = params.diffuse, params.specular_k
    expect_db = 20 * np.log10(d + (1 - d) * np.cos(np.deg2rad(40.0)) ** k)
    got_db = (levels[40.0] - levels[0.0]) * params.dynamic_range_db / 255.0
    assert got_db == pytest.approx(expect_db, abs=1.0)


def test_speckle_is_rayleigh_and_spatially_correlated(make_box_spine):
    sim = BModeSimulator(make_box_spine((0, -50, 0), (1, -49, 1)), SMALL, seed=1)
    env = 10 ** (sim._speckle_db[0].astype(np.float64) / 20)
    # Rayleigh: mean / rms = sqrt(pi) / 2
    assert env.mean() / np.sqrt(np.mean(env**2)) == pytest.approx(np.sqrt(np.pi) / 2, abs=0.01)
    e = env - env.mean()

    def corr(a, b):
        return float(np.mean(a * b) / np.sqrt(np.mean(a * a) * np.mean(b * b)))

    assert corr(e[:, :-1], e[:, 1:]) > 0.5  # neighbours share speckle
    assert abs(corr(e[:, :-20], e[:, 20:])) < 0.1  # far pixels do not


@pytest.mark.parametrize("kind", [ProbeKind.LINEAR, ProbeKind.CURVILINEAR])
def test_sweep_over_the_toy_spine_reproduces_bone_echoes(toy_spine, kind):
    probe = ProbeModel(kind=kind, shape=(256, 256), pixel_mm=0.3)
    sim = BModeSimulator(toy_spine, probe, seed=0)
    frames = sim.render_sweep(sweep_poses(toy_spine, 12))
    recalls = [bone_echo_recall(f) for f in frames if f.bone_mask.any()]
    assert len(recalls) >= 8
    assert np.mean(recalls) >= 0.95
    assert all(f.image.dtype == np.uint8 and f.image.shape == (256, 256) for f in frames)


def test_same_seed_same_frames(toy_spine):
    poses = sweep_poses(toy_spine, 3)
    a = BModeSimulator(toy_spine, SMALL, seed=5).render_sweep(poses)
    b = BModeSimulator(toy_spine, SMALL, seed=5).render_sweep(poses)
    c = BModeSimulator(toy_spine, SMALL, seed=6).render_sweep(poses)
    for fa, fb, fc in zip(a, b, c, strict=True):
        np.testing.assert_array_equal(fa.image, fb.image)
        np.testing.assert_array_equal(fa.bone_mask, fc.bone_mask)  # geometry is noise-free
    assert any(not np.array_equal(fa.image, fc.image) for fa, fc in zip(a, c, strict=True))


def _frame(bright_row: int | None) -> BModeFrame:
    img = np.full((20, 10), 100, np.uint8)
    if bright_row is not None:
        img[bright_row, :5] = 200
    gt = np.zeros((20, 10), bool)
    gt[10] = True
    tissue = np.zeros((20, 10), bool)
    tissue[:9] = True
    return BModeFrame(img, gt, tissue, np.eye(4))


@pytest.mark.parametrize(("bright_row", "recall"), [(10, 0.6), (11, 0.6), (12, 0.0), (None, 0.0)])
def test_recall_counts_gt_pixels_with_a_bright_pixel_within_one(bright_row, recall):
    # columns 0..4 bright -> gt columns 0..5 have one within 1 px (Chebyshev)
    assert bone_echo_recall(_frame(bright_row)) == pytest.approx(recall)


def test_recall_threshold_is_the_brightest_tissue_pixel():
    f = _frame(10)
    f.image[2, 3] = 220  # one tissue pixel brighter than the echo
    assert bone_echo_recall(f) == 0.0


def test_sweep_poses_follow_the_spinous_processes(toy_spine):
    T = sweep_poses(toy_spine, 21, standoff_mm=20.0, margin_mm=10.0)
    assert T.shape == (21, 4, 4)
    np.testing.assert_allclose(T[:, :3, :3], np.broadcast_to(R_SPINE_PROBE_TRANSVERSE, (21, 3, 3)))
    beam = T[0, :3, :3] @ [0, 0, 1]
    np.testing.assert_allclose(beam, [0, -1, 0])  # looking anteriorly
    assert np.all(np.diff(T[:, 2, 3]) < 0)  # superior -> inferior
    # the toy spinous process spans z0 - 10 .. z0 + 6 -> centroid z0 - 2; tip at y = 62
    assert T[0, 2, 3] == pytest.approx(76.0 - 2.0 + 10.0)
    assert T[-1, 2, 3] == pytest.approx(-76.0 - 2.0 - 10.0)
    np.testing.assert_allclose(T[:, 1, 3], 62.0 + 20.0)
    np.testing.assert_allclose(T[:, 0, 3], 0.0, atol=1e-9)


def test_curvilinear_pixel_map_geometry():
    p = ProbeModel(
        kind=ProbeKind.CURVILINEAR,
        shape=(100, 101),
        pixel_mm=0.5,
        radius_mm=40.0,
        fan_angle_deg=60.0,
        n_scanlines=101,
    )
    line, rng = p.pixel_map()
    np.testing.assert_array_equal(line[:, 50], 50)  # centre column is the centre scanline
    np.testing.assert_allclose(rng[:, 50], (np.arange(100) + 0.5) * 0.5, atol=1e-5)
    assert line[0, 0] == -1  # top corners lie outside the fan
    o, d = p.scanlines()
    np.testing.assert_allclose(np.linalg.norm(o - [0, 0, -40.0], axis=1), 40.0)
    np.testing.assert_allclose(d[50], [0, 0, 1], atol=1e-12)  # centre scanline along +z
    np.testing.assert_allclose(np.degrees(np.arctan2(d[-1, 0], d[-1, 2])), 30.0)


@pytest.mark.parametrize(
    ("pose", "match"),
    [
        (np.eye(3), r"expected T_spine_probe as a \(4, 4\) transform, got \(3, 3\)"),
        (np.full((4, 4), np.nan), "T_spine_probe contains non-finite values"),
        (np.diag([2.0, 1, 1, 1]), "T_spine_probe is not a rigid transform"),
    ],
)
def test_bad_poses_are_rejected(toy_spine, pose, match):
    sim = BModeSimulator(toy_spine, SMALL)
    with pytest.raises(ValueError, match=match):
        sim.render(pose)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"shape": (1, 10)}, r"shape must be \(rows, cols\) >= 2"),
        ({"pixel_mm": -1.0}, "pixel_mm must be a finite number > 0"),
        ({"fan_angle_deg": 0.0}, r"fan_angle_deg must lie in \(0, 180\)"),
        ({"n_scanlines": 1}, "n_scanlines must be >= 2"),
        ({"kind": "phased"}, "'phased' is not a valid ProbeKind"),
    ],
)
def test_bad_probe_models_are_rejected(toy_spine, change, match):
    with pytest.raises(ValueError, match=match):
        BModeSimulator(toy_spine, dataclasses.replace(SMALL, **change))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"diffuse": 1.5}, r"diffuse must lie in \[0, 1\], got 1.5"),
        ({"dynamic_range_db": 0.0}, "dynamic_range_db must be a finite number > 0"),
        ({"attenuation_db_per_mm": -0.1}, "attenuation_db_per_mm must be >= 0"),
        ({"speckle_bank": 0}, "speckle_bank must be >= 1, got 0"),
    ],
)
def test_bad_acoustic_params_are_rejected(toy_spine, change, match):
    with pytest.raises(ValueError, match=match):
        BModeSimulator(toy_spine, SMALL, dataclasses.replace(BModeParams(), **change))


def test_bad_sweep_arguments_are_rejected(toy_spine):
    with pytest.raises(ValueError, match="n_frames must be >= 1, got 0"):
        sweep_poses(toy_spine, 0)
    with pytest.raises(ValueError, match=r"expected \(n, 4, 4\) poses, got \(4, 4\)"):
        BModeSimulator(toy_spine, SMALL).render_sweep(np.eye(4))
