"""Symmetry-plane fit: recovers a tilted, shifted mirror plane; bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.ingest.symmetry import symmetry_plane, symmetry_planes
from usx_model.ingest.xray_points import LateralPlane


def _mirror_cloud(rng, n=3000):
    """A surface seen from +y (like a US bone surface), mirror-symmetric about x = 0: a
    curved sheet with a ridge (laminae, transverse processes) and a bump along z."""
    x, z = rng.uniform(2, 40, n), rng.uniform(-15, 15, n)
    y = 0.02 * x**2 + 6.0 * np.exp(-(((x - 22) / 4) ** 2)) + 3.0 * np.sin(z / 6.0)
    half = np.column_stack([x, y, z])
    return np.vstack([half, half * [-1, 1, 1]])


@pytest.mark.parametrize(("tilt_deg", "shift_mm"), [(0.0, 0.0), (6.0, 3.0), (-8.0, -4.0)])
def test_recovers_mirror_plane(tilt_deg, shift_mm):
    rng = np.random.default_rng(0)
    R = Rotation.from_euler("z", tilt_deg, degrees=True).as_matrix()  # axial rotation
    pts = _mirror_cloud(rng) @ R.T + [shift_mm, 0, 0] + rng.normal(0, 0.2, (6000, 3))
    true_n = R @ [1.0, 0, 0]
    init = LateralPlane(np.zeros(3), np.array([1.0, 0, 0]), np.eye(3), np.ones(3))
    fit = symmetry_plane(pts, init)
    assert np.degrees(np.arccos(abs(fit.normal @ true_n))) < 0.5
    # the plane passes through the true centre (shift, 0, 0)
    assert abs((np.array([shift_mm, 0, 0]) - fit.point_mm) @ fit.normal) < 0.2


def test_symmetry_planes_per_level():
    rng = np.random.default_rng(1)
    shifts = {1: 2.0, 2: -2.0}
    pts = np.vstack(
        [_mirror_cloud(rng, 1500) + [s, 0, -40.0 * (lv - 1)] for lv, s in shifts.items()]
    )
    cen = {lv: np.array([s, 0.0, -40.0 * (lv - 1)]) for lv, s in shifts.items()}
    init = {
        lv: LateralPlane(np.zeros(3), np.array([1.0, 0, 0]), np.eye(3), np.ones(3)) for lv in shifts
    }
    planes = symmetry_planes(pts, cen, init, half_slab_mm=16.0)
    for lv, s in shifts.items():
        assert planes[lv].point_mm @ planes[lv].normal == pytest.approx(s, abs=0.2)


@pytest.mark.parametrize(("shift_mm", "tilt_deg"), [(12.0, 0.0), (0.0, 35.0)])
def test_a_plane_that_runs_off_keeps_its_start(shift_mm, tilt_deg):
    """One level's fit lands 12 mm from its start or tilted 35 deg (as a slab with one
    side of the arch would): not trusted, the starting plane stays; the other level is
    refined."""
    rng = np.random.default_rng(1)
    shifts = {1: shift_mm, 2: -2.0}
    R = Rotation.from_euler("z", tilt_deg, degrees=True).as_matrix()
    clouds = {1: _mirror_cloud(rng, 1500) @ R.T, 2: _mirror_cloud(rng, 1500)}
    pts = np.vstack([clouds[lv] + [s, 0, -40.0 * (lv - 1)] for lv, s in shifts.items()])
    cen = {lv: np.array([0.0, 0.0, -40.0 * (lv - 1)]) for lv in shifts}
    init = {
        lv: LateralPlane(np.zeros(3), np.array([1.0, 0, 0]), np.eye(3), np.ones(3)) for lv in shifts
    }
    planes = symmetry_planes(pts, cen, init, half_slab_mm=16.0, max_move_mm=8.0)
    assert planes[1] is init[1]
    assert planes[2].point_mm @ planes[2].normal == pytest.approx(-2.0, abs=0.2)


INIT = LateralPlane(np.zeros(3), np.array([1.0, 0, 0]), np.eye(3), np.ones(3))


@pytest.mark.parametrize(
    ("pts", "kwargs", "match"),
    [
        (np.zeros((10, 3)), {}, r"N >= 20, got \(10, 3\)"),
        (np.full((30, 3), np.nan), {}, "non-finite"),
        (np.random.default_rng(0).normal(size=(30, 3)), {"rounds": 0}, "rounds must be >= 1"),
    ],
)
def test_bad_input(pts, kwargs, match):
    with pytest.raises(ValueError, match=match):
        symmetry_plane(pts, INIT, **kwargs)
