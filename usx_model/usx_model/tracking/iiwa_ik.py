"""Inverse kinematics of the iiwa 14 by damped least squares (for the phantom's joint states).

The iiwa is redundant (7 joints, 6 constraints): the solution returned is the one reached
from the seed, which for a smooth sweep seeded with the previous frame's solution gives a
smooth joint trajectory. Positions are weighted in metres against rotations in radians so
that both errors are of comparable size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from usx_model.tracking.iiwa import _JOINT_AXES, JOINT_LIMITS_RAD, N_JOINTS, link_transforms


@dataclass
class IKResult:
    """Batched IK result.

    Attributes:
        joint_positions_rad: (N, 7) solutions (the last iterate where not converged).
        converged: (N,) bool, both tolerances met.
        position_error_mm: (N,) remaining flange position error, mm.
        rotation_error_rad: (N,) remaining flange rotation error, rad.
    """

    joint_positions_rad: np.ndarray
    converged: np.ndarray
    position_error_mm: np.ndarray
    rotation_error_rad: np.ndarray


def jacobian(joint_positions_rad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geometric Jacobian of the flange in the base frame.

    Args:
        joint_positions_rad: (N, 7).

    Returns:
        ``(J, T_link0_ee)``: (N, 6, 7) with rows (v_x, v_y, v_z in mm/rad, w_x, w_y, w_z)
        and the (N, 4, 4) flange poses, mm.
    """
    frames = link_transforms(np.atleast_2d(joint_positions_rad), check_limits=False)
    ee = frames[:, -1, :3, 3]
    J = np.zeros((frames.shape[0], 6, N_JOINTS))
    for k, (axis, sign) in enumerate(_JOINT_AXES):
        # joint k rotates link k about its own (unchanged) axis through link k's origin
        z = sign * frames[:, k + 1, :3, axis]
        J[:, :3, k] = np.cross(z, ee - frames[:, k + 1, :3, 3])
        J[:, 3:, k] = z
    return J, frames[:, -1]


def _pose_error(T_target: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dp = T_target[:, :3, 3] - T[:, :3, 3]
    R_err = T_target[:, :3, :3] @ np.swapaxes(T[:, :3, :3], -1, -2)
    return dp, Rotation.from_matrix(R_err).as_rotvec()


def inverse_kinematics(
    T_link0_ee_target: np.ndarray,
    seed_rad: np.ndarray,
    *,
    max_iterations: int = 200,
    position_tolerance_mm: float = 1e-3,
    rotation_tolerance_rad: float = 1e-5,
    damping: float = 1e-3,
    max_step_rad: float = 0.2,
) -> IKResult:
    """Joint angles that put the flange at the target pose(s), within the joint limits.

    Args:
        T_link0_ee_target: (4, 4) or (N, 4, 4) target flange poses, mm.
        seed_rad: (7,) or (N, 7) start configurations (broadcast to N).
        max_iterations: damped least-squares steps at most.
        position_tolerance_mm, rotation_tolerance_rad: convergence thresholds.
        damping: Levenberg damping of the (metre, radian) normal equations.
        max_step_rad: largest joint change per iteration (keeps steps in the linear range).

    Returns:
        ``IKResult`` with (N, ...) arrays (N = 1 for a single target).
    """
    T_target = np.asarray(T_link0_ee_target, dtype=np.float64)
    if T_target.shape[-2:] != (4, 4) or T_target.ndim not in (2, 3):
        raise ValueError(
            f"expected target poses of shape (4, 4) or (N, 4, 4), got {T_target.shape}"
        )
    T_target = T_target.reshape(-1, 4, 4)
    seed = np.asarray(seed_rad, dtype=np.float64)
    if seed.shape[-1:] != (N_JOINTS,) or seed.ndim not in (1, 2):
        raise ValueError(f"expected seed of shape (7,) or (N, 7), got {seed.shape}")
    q = np.array(np.broadcast_to(seed, (T_target.shape[0], N_JOINTS)))
    scale = np.array([1e-3] * 3 + [1.0] * 3)  # mm -> m for the position rows

    def weighted_error(q_: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        J_, T_ = jacobian(q_)
        dp_, dr_ = _pose_error(T_target, T_)
        return J_, np.concatenate([dp_, dr_], axis=1) * scale, np.c_[dp_, dr_]

    J, e, raw = weighted_error(q)
    for _ in range(max_iterations):
        done = (np.linalg.norm(raw[:, :3], axis=1) <= position_tolerance_mm) & (
            np.linalg.norm(raw[:, 3:], axis=1) <= rotation_tolerance_rad
        )
        if done.all():
            break
        Js = J * scale[:, None]
        JJt = Js @ np.swapaxes(Js, -1, -2) + damping**2 * np.eye(6)
        dq = (np.swapaxes(Js, -1, -2) @ np.linalg.solve(JJt, e[..., None]))[..., 0]
        # scale the whole step (not per joint) so that its direction is kept
        largest = np.max(np.abs(dq), axis=1, keepdims=True)
        dq *= np.minimum(1.0, max_step_rad / np.maximum(largest, 1e-12))
        dq[done] = 0.0
        # backtrack rows whose error grew (near singularities the linear model overshoots)
        err0 = np.linalg.norm(e, axis=1)
        for _halving in range(8):
            q_new = np.clip(q + dq, -JOINT_LIMITS_RAD, JOINT_LIMITS_RAD)
            J_new, e_new, raw_new = weighted_error(q_new)
            worse = np.linalg.norm(e_new, axis=1) > err0
            if not worse.any():
                break
            dq[worse] *= 0.5
        q, J, e, raw = q_new, J_new, e_new, raw_new
    _, T = jacobian(q)
    dp, dr = _pose_error(T_target, T)
    p_err = np.linalg.norm(dp, axis=1)
    r_err = np.linalg.norm(dr, axis=1)
    converged = (p_err <= position_tolerance_mm) & (r_err <= rotation_tolerance_rad)
    return IKResult(q, converged, p_err, r_err)
