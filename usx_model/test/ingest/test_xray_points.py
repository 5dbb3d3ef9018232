"""X-ray label placement: OBB plane on a synthetic box spine, ray-plane cuts, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import make_transform
from usx_model.ingest.xray import device_geometry
from usx_model.ingest.xray_points import (
    LateralPlane,
    lateral_plane_along,
    lateral_plane_from_us,
    level_centroids,
    level_midplanes,
    per_level_planes,
    place_xray_labels,
    xray_chain,
)


def _box_surface(rng, size=(80.0, 30.0, 200.0), centre=(7.0, 0.0, 0.0), n=4000):
    """Points on the posterior (+y) face and the sides of a box: x lateral, z long."""
    sx, sy, sz = size
    top = np.column_stack(
        [rng.uniform(-sx / 2, sx / 2, n), np.full(n, sy / 2), rng.uniform(-sz / 2, sz / 2, n)]
    )
    side = np.column_stack(
        [
            np.sign(rng.uniform(-1, 1, n)) * sx / 2,
            rng.uniform(-sy / 2, sy / 2, n),
            rng.uniform(-sz / 2, sz / 2, n),
        ]
    )
    return np.vstack([top, side]) + centre


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plane_on_box_spine(seed):
    rng = np.random.default_rng(seed)
    pts = _box_surface(rng)
    R = Rotation.random(random_state=seed).as_matrix()
    t = rng.uniform(-300, 300, 3)
    plane = lateral_plane_from_us(pts @ R.T + t, trim=0.0)
    # axis 1 = long (z), 2 = lateral (x), 3 = depth (y); midpoint at x = 7
    np.testing.assert_allclose(np.abs(plane.axes @ R), np.eye(3)[[2, 0, 1]], atol=0.03)
    x_local = R.T @ (plane.point_mm - t)
    assert x_local[0] == pytest.approx(7.0, abs=0.2)
    np.testing.assert_allclose(plane.extents_mm[:2], [200.0, 80.0], atol=4.0)


def test_plane_along_given_axis():
    pts = np.array([[-10.0, 0, 0], [30.0, 5, 1], [0.0, 2, 2]])
    plane = lateral_plane_along(pts, [2.0, 0, 0])
    assert plane.point_mm @ plane.normal == pytest.approx(10.0)


@pytest.mark.parametrize("parallel", [True, False])
def test_label_rays_cut_the_plane(parallel):
    geom = device_geometry((20, 30), 0.5, None if parallel else 1000.0, None if parallel else 700.0)
    label = np.zeros((20, 30), np.uint8)
    label[2:5, 3:9] = 1
    label[10:14, 20:25] = 3
    T = make_transform(Rotation.from_euler("z", 30, degrees=True).as_matrix(), [5.0, -2.0, 40.0])
    plane = LateralPlane(
        T[:3, :3] @ [4.0, 0, 0] + T[:3, 3], T[:3, :3] @ [1.0, 0, 0], np.eye(3), np.ones(3)
    )
    pts = place_xray_labels(label, geom, T, plane)
    assert sorted(pts) == [1, 3] and len(pts[1]) == 18 and len(pts[3]) == 20
    for lv, p in pts.items():
        local = (p - T[:3, 3]) @ T[:3, :3]  # back to the X-ray frame
        np.testing.assert_allclose(local[:, 0], 4.0, atol=1e-9)
        # independent check: the points project back onto their own pixels
        rc = geom.project(local)
        rows, cols = np.nonzero(label == lv)
        np.testing.assert_allclose(rc, np.column_stack([rows, cols]), atol=1e-6)
    cen = level_centroids(pts)
    assert cen[1][2] > cen[3][2]  # row 2-4 lies above row 10-13 (rows run inferiorly)


def test_per_level_planes_follow_lateral_shifts():
    rng = np.random.default_rng(0)
    shifts = {1: -3.0, 2: 0.0, 3: 4.0}
    pts = np.vstack(
        [
            np.column_stack(
                [
                    rng.uniform(-40, 40, 800) + s,
                    rng.uniform(0, 10, 800),
                    rng.uniform(-15, 15, 800) - 40.0 * (lv - 2),
                ]
            )
            for lv, s in shifts.items()
        ]
    )
    plane = lateral_plane_along(pts, [1.0, 0, 0])
    cen = {lv: np.array([0.0, 0.0, -40.0 * (lv - 2)]) for lv in shifts}
    planes = per_level_planes(pts, cen, plane, trim=0.0)
    for lv, s in shifts.items():
        assert planes[lv].point_mm[0] == pytest.approx(s, abs=0.5)


GEOM = device_geometry((8, 8), 0.5, 1000.0, 700.0)
PLANE = LateralPlane(np.zeros(3), np.array([1.0, 0, 0]), np.eye(3), np.ones(3))
ONE = np.zeros((8, 8), np.int64)
ONE[3, 3] = 2


@pytest.mark.parametrize(
    ("label", "T", "plane", "match"),
    [
        (np.zeros((8, 8), np.uint8), np.eye(4), PLANE, "no labelled pixels"),
        (np.zeros((8, 9), np.uint8), np.eye(4), PLANE, r"expected a label image of shape \(8, 8\)"),
        (ONE.astype(float), np.eye(4), PLANE, "expected an integer label image"),
        (ONE * 4, np.eye(4), PLANE, r"expected labels in 0..5"),
        (ONE, np.full((4, 4), np.nan), PLANE, "T_base_xray has non-finite entries"),
        (ONE, np.eye(3), PLANE, r"expected T_base_xray as a \(4, 4\)"),
        (
            ONE,
            np.eye(4),
            LateralPlane(np.zeros(3), np.array([0.0, 1, 0]), np.eye(3), np.ones(3)),
            "nearly parallel",
        ),
        (ONE, np.eye(4), {1: PLANE}, r"no placement plane for labelled levels \[2\]"),
    ],
)
def test_bad_placement_input(label, T, plane, match):
    with pytest.raises(ValueError, match=match):
        place_xray_labels(label, GEOM, T, plane)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: lateral_plane_from_us(np.zeros((10, 2))), r"expected points_mm as \(N, 3\)"),
        (lambda: lateral_plane_from_us(np.full((10, 3), np.nan)), "non-finite"),
        (lambda: lateral_plane_from_us(np.zeros((3, 3))), "at least 4 points"),
        (lambda: lateral_plane_along(np.zeros((3, 3)), [0, 0, 0]), "non-zero finite"),
        (lambda: xray_chain(np.eye(4), np.full((4, 4), np.inf)), "T_cbct_xray has non-finite"),
    ],
)
def test_bad_plane_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("tilt_deg", [0.0, 7.0, -12.0])
def test_level_midplanes_recover_each_levels_plane(tilt_deg: float) -> None:
    rng = np.random.default_rng(5)
    lateral = np.array([1.0, 0.0, 0.0])
    by_level, want = {}, {}
    for lv in (1, 2, 3):
        # a filled body silhouette in a sagittal plane rotated about the cranial axis
        a = np.deg2rad(tilt_deg * lv)
        n = np.array([np.cos(a), np.sin(a), 0.0])
        u, w = np.array([-np.sin(a), np.cos(a), 0.0]), np.array([0.0, 0.0, 1.0])
        c = np.array([3.0 * lv, -40.0, 35.0 * lv])
        st = rng.uniform(-15, 15, (400, 2))
        by_level[lv] = c + st[:, :1] * u + st[:, 1:] * w
        want[lv] = (c, n)
    planes = level_midplanes(by_level, -lateral if tilt_deg < 0 else lateral)
    for lv, (c, n) in want.items():
        sign = -1.0 if tilt_deg < 0 else 1.0
        np.testing.assert_allclose(planes[lv].normal, sign * n, atol=1e-9)
        assert abs((planes[lv].point_mm - c) @ n) < 1e-9  # its point lies on the plane


@pytest.mark.parametrize(
    "points",
    [np.zeros((2, 3)), np.outer(np.arange(10.0), [0.0, 1.0, 2.0])],
    ids=["two_points", "collinear"],
)
def test_level_midplanes_none_without_a_plane(points: np.ndarray) -> None:
    good = np.random.default_rng(0).normal(size=(50, 3)) * [0.0, 10.0, 10.0]
    assert level_midplanes({1: good, 2: points}, np.array([1.0, 0.0, 0.0])) is None
