"""iiwa 14 forward kinematics against the manufacturer's DH table and known poses."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.tracking.iiwa import (
    JOINT_LIMITS_RAD,
    JOINT_NAMES,
    forward_kinematics,
    link_transforms,
)

# Standard (distal) DH parameters of the LBR iiwa 14 R820, mm: an independent description
# of the same arm (alpha alternates so that joint directions match the URDF).
_DH_D_MM = [360.0, 0.0, 420.0, 0.0, 400.0, 0.0, 126.0]
_DH_ALPHA = np.array([-1, 1, 1, -1, -1, 1, 0]) * np.pi / 2


def _dh_fk(q: np.ndarray) -> np.ndarray:
    """Naive loop over the DH table, one configuration."""
    T = np.eye(4)
    for theta, d, alpha in zip(q, _DH_D_MM, _DH_ALPHA, strict=True):
        ct, st, ca, sa = np.cos(theta), np.sin(theta), np.cos(alpha), np.sin(alpha)
        T = T @ np.array(
            [[ct, -st * ca, st * sa, 0], [st, ct * ca, -ct * sa, 0], [0, sa, ca, d], [0, 0, 0, 1]]
        )
    return T


@pytest.mark.parametrize(
    ("q_deg", "position_mm", "z_axis"),
    [
        ([0, 0, 0, 0, 0, 0, 0], [0, 0, 1306], [0, 0, 1]),  # straight up
        ([0, 90, 0, 0, 0, 0, 0], [946, 0, 360], [1, 0, 0]),  # horizontal along +x
        ([90, 90, 0, 0, 0, 0, 0], [0, 946, 360], [0, 1, 0]),  # A1 swings it to +y
        ([0, 0, 0, 90, 0, 0, 0], [-526, 0, 780], [-1, 0, 0]),  # elbow bent (A4 axis is -y)
        ([0, 0, 0, 0, 0, 90, 0], [126, 0, 1180], [1, 0, 0]),  # wrist bent
        ([0, 0, 0, 0, 0, 0, 90], [0, 0, 1306], [0, 0, 1]),  # A7 spins the flange only
    ],
)
def test_known_configurations(q_deg, position_mm, z_axis):
    T = forward_kinematics(np.deg2rad(q_deg))
    np.testing.assert_allclose(T[:3, 3], position_mm, atol=1e-9)
    np.testing.assert_allclose(T[:3, 2], z_axis, atol=1e-12)


def test_matches_dh_table_on_random_configurations():
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, (200, 7)) * JOINT_LIMITS_RAD
    T = forward_kinematics(q)
    assert T.shape == (200, 4, 4)
    expected = np.stack([_dh_fk(qi) for qi in q])
    np.testing.assert_allclose(T, expected, atol=1e-9)


def test_batched_equals_single_and_rotation_is_proper():
    q = np.random.default_rng(1).uniform(-1, 1, (5, 7))
    batch = forward_kinematics(q)
    for qi, Ti in zip(q, batch, strict=True):
        np.testing.assert_array_equal(forward_kinematics(qi), Ti)
        np.testing.assert_allclose(Ti[:3, :3] @ Ti[:3, :3].T, np.eye(3), atol=1e-12)
        assert np.linalg.det(Ti[:3, :3]) == pytest.approx(1.0)


def test_link_transforms_heights_at_zero():
    frames = link_transforms(np.zeros(7))
    heights = [0, 147.5, 360, 588, 780, 987.5, 1180, 1271, 1306]
    np.testing.assert_allclose(frames[:, 2, 3], heights)
    # the URDF's sideways link offsets cancel in pairs
    np.testing.assert_allclose(frames[:, 1, 3], [0, 0, -10, 0, 10.5, 0, -70.7, 0, 0], atol=1e-12)
    np.testing.assert_allclose(frames[:, 0, 3], 0, atol=1e-12)


def test_names():
    assert JOINT_NAMES[0] == "lbr_A1" and len(JOINT_NAMES) == 7


@pytest.mark.parametrize(
    ("q", "match"),
    [
        (np.zeros(6), r"expected joint positions of shape \(7,\) or \(N, 7\) in rad, got \(6,\)"),
        (np.zeros((2, 3, 7)), r"got \(2, 3, 7\)"),
        (np.array([0, 0, np.nan, 0, 0, 0, 0]), "must be finite"),
        (np.array(["a"] * 7), "expected real joint positions"),
        (np.deg2rad([0, 121, 0, 0, 0, 0, 0]), r"lbr_A2 = 121.000 deg .* limit of ±120 deg"),
        (np.deg2rad([[0] * 7, [0, 0, 0, 0, 0, 0, -176]]), r"lbr_A7 .* configuration 1"),
    ],
)
def test_invalid_input(q, match):
    with pytest.raises(ValueError, match=match):
        forward_kinematics(q)


def test_limits_can_be_ignored():
    q = np.deg2rad([0, 150, 0, 0, 0, 0, 0])
    T = forward_kinematics(q, check_limits=False)
    assert np.isfinite(T).all()
