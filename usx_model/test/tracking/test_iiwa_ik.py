"""IK round trips through FK, and the Jacobian against finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.tracking.iiwa import JOINT_LIMITS_RAD, forward_kinematics
from usx_model.tracking.iiwa_ik import inverse_kinematics, jacobian


def test_jacobian_matches_finite_differences():
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, (3, 7))
    J, T = jacobian(q)
    eps = 1e-6
    for k in range(7):
        dq = np.zeros(7)
        dq[k] = eps
        Tp, Tm = forward_kinematics(q + dq), forward_kinematics(q - dq)
        v = (Tp[:, :3, 3] - Tm[:, :3, 3]) / (2 * eps)
        np.testing.assert_allclose(J[:, :3, k], v, atol=1e-4)
        # angular velocity from dR R^T
        dR = (Tp[:, :3, :3] - Tm[:, :3, :3]) / (2 * eps) @ np.swapaxes(T[:, :3, :3], -1, -2)
        w = np.stack([dR[:, 2, 1], dR[:, 0, 2], dR[:, 1, 0]], axis=1)
        np.testing.assert_allclose(J[:, 3:, k], w, atol=1e-6)


def test_ik_recovers_reachable_poses_from_nearby_seeds():
    rng = np.random.default_rng(1)
    q_true = rng.uniform(-0.7, 0.7, (20, 7)) * JOINT_LIMITS_RAD
    target = forward_kinematics(q_true)
    seed = q_true + rng.normal(scale=0.2, size=q_true.shape)
    res = inverse_kinematics(target, seed)
    assert res.converged.all()
    np.testing.assert_allclose(forward_kinematics(res.joint_positions_rad), target, atol=1e-3)
    assert np.all(np.abs(res.joint_positions_rad) <= JOINT_LIMITS_RAD)


def test_unreachable_pose_reports_not_converged():
    target = np.eye(4)
    target[:3, 3] = [2000.0, 0.0, 500.0]  # beyond the 1.3 m reach
    res = inverse_kinematics(target, np.zeros(7), max_iterations=50)
    assert res.joint_positions_rad.shape == (1, 7)
    assert not res.converged[0] and res.position_error_mm[0] > 600


@pytest.mark.parametrize(
    ("target", "seed", "match"),
    [
        (np.eye(3), np.zeros(7), r"target poses of shape \(4, 4\) or \(N, 4, 4\), got \(3, 3\)"),
        (np.eye(4), np.zeros(6), r"seed of shape \(7,\) or \(N, 7\), got \(6,\)"),
    ],
)
def test_validation(target, seed, match):
    with pytest.raises(ValueError, match=match):
        inverse_kinematics(target, seed)
