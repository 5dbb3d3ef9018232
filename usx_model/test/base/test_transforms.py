"""Transform helpers against scipy and hand-written rotations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import (
    apply_transform,
    invert_transform,
    make_transform,
    pose_from_transform,
    transform_from_pose,
    transform_from_xyz_rpy,
    validate_transform,
)


@pytest.mark.parametrize(
    ("rpy_deg", "R"),
    [
        ((90, 0, 0), [[1, 0, 0], [0, 0, -1], [0, 1, 0]]),
        ((0, 90, 0), [[0, 0, 1], [0, 1, 0], [-1, 0, 0]]),
        ((0, 0, 90), [[0, -1, 0], [1, 0, 0], [0, 0, 1]]),
        # URDF order: roll first about fixed x, then yaw about fixed z
        ((90, 0, 90), [[0, 0, 1], [1, 0, 0], [0, 1, 0]]),
    ],
)
def test_xyz_rpy_is_urdf_convention(rpy_deg, R):
    T = transform_from_xyz_rpy([1, 2, 3], rpy_deg)
    np.testing.assert_allclose(T[:3, :3], R, atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])


def test_pose_round_trip_and_inverse():
    rng = np.random.default_rng(0)
    quat = Rotation.random(5, random_state=1).as_quat()
    t = rng.normal(size=(5, 3)) * 100
    T = transform_from_pose(t, quat)
    t2, q2 = pose_from_transform(T)
    np.testing.assert_allclose(t2, t)
    np.testing.assert_allclose(np.abs(np.sum(q2 * quat, axis=1)), 1.0, atol=1e-12)
    np.testing.assert_allclose(
        invert_transform(T) @ T, np.broadcast_to(np.eye(4), T.shape), atol=1e-12
    )
    np.testing.assert_allclose(invert_transform(T[0]), np.linalg.inv(T[0]), atol=1e-12)
    pts = rng.normal(size=(7, 3))
    expected = (T[0] @ np.c_[pts, np.ones(7)].T).T[:, :3]
    np.testing.assert_allclose(apply_transform(T[0], pts), expected)
    assert make_transform(np.eye(3), [1, 2, 3]).shape == (4, 4)


@pytest.mark.parametrize(
    ("T", "match"),
    [
        (np.eye(3), r"\(4, 4\) homogeneous transform, got \(3, 3\)"),
        (np.full((4, 4), np.nan), "non-finite"),
        (np.diag([1.0, 1.0, -1.0, 1.0]), "not a proper rotation"),
        (np.diag([2.0, 1.0, 1.0, 1.0]), "not a proper rotation"),
    ],
)
def test_validate_transform(T, match):
    with pytest.raises(ValueError, match=match):
        validate_transform(T)


def test_transform_from_xyz_rpy_shape_check():
    with pytest.raises(ValueError, match=r"shape \(3,\), got \(2,\) and \(3,\)"):
        transform_from_xyz_rpy([0, 0], [0, 0, 0])
    with pytest.raises(ValueError, match=r"expected \(N, 3\) points, got \(3,\)"):
        apply_transform(np.eye(4), np.zeros(3))
