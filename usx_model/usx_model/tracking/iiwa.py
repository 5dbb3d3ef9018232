"""Forward kinematics of the KUKA LBR iiwa 14 R820, in millimetres.

The kinematic chain is the one of the lbr_fri_ros2_stack robot description
(``lbr_description/urdf/iiwa14``): frames ``lbr_link_0`` .. ``lbr_link_7`` and the fixed
``lbr_link_ee`` flange frame, joints ``lbr_A1`` .. ``lbr_A7``. Every joint origin there has
zero rpy, so each link frame is parallel to the base frame at zero joint angles and the
joint axes alternate z, y, z, -y, z, y, z. At zero angles the arm points straight up and
the flange (``lbr_link_ee``) sits at z = 360 + 420 + 400 + 126 = 1306 mm, matching the
manufacturer's DH lengths d1 = 360, d3 = 420, d5 = 400, d7 = 126 mm (d7 includes the
35 mm from ``lbr_link_7`` to the flange).

The core works in millimetres; the ROS boundary converts to metres.
"""

from __future__ import annotations

import numpy as np

N_JOINTS = 7

#: Joint names as published on ``/lbr/joint_states`` by the lbr_fri_ros2_stack.
JOINT_NAMES: tuple[str, ...] = tuple(f"lbr_A{i}" for i in range(1, N_JOINTS + 1))

#: Symmetric joint limits, rad (KUKA data sheet: ±170, ±120, ±170, ±120, ±170, ±120, ±175 deg).
JOINT_LIMITS_RAD: np.ndarray = np.deg2rad([170.0, 120.0, 170.0, 120.0, 170.0, 120.0, 175.0])

# Joint origin of joint i in its parent link frame (link_{i-1}), mm; rpy is zero for all.
_JOINT_ORIGINS_MM = np.array(
    [
        [0.0, 0.0, 147.5],
        [0.0, -10.0, 212.5],
        [0.0, 10.0, 228.0],
        [0.0, 10.5, 192.0],
        [0.0, -10.5, 207.5],
        [0.0, -70.7, 192.5],
        [0.0, 70.7, 91.0],
    ]
)
# Joint axis as (coordinate index, sign) in the child link frame.
_JOINT_AXES = ((2, 1.0), (1, 1.0), (2, 1.0), (1, -1.0), (2, 1.0), (1, 1.0), (2, 1.0))
# Fixed joint lbr_link_7 -> lbr_link_ee (the media flange), mm.
_EE_OFFSET_MM = np.array([0.0, 0.0, 35.0])


def _validate_joints(q: np.ndarray, check_limits: bool, limit_tolerance_rad: float) -> np.ndarray:
    q = np.asarray(q)
    if q.ndim not in (1, 2) or q.shape[-1] != N_JOINTS:
        raise ValueError(
            f"expected joint positions of shape ({N_JOINTS},) or (N, {N_JOINTS}) in rad, "
            f"got {q.shape}"
        )
    if not np.issubdtype(q.dtype, np.number) or np.issubdtype(q.dtype, np.complexfloating):
        raise ValueError(f"expected real joint positions in rad, got dtype {q.dtype}")
    q = q.astype(np.float64)
    if not np.all(np.isfinite(q)):
        bad = np.argwhere(~np.isfinite(np.atleast_2d(q)))[0]
        raise ValueError(f"joint positions must be finite, got a non-finite value at {tuple(bad)}")
    if check_limits:
        over = np.abs(np.atleast_2d(q)) > JOINT_LIMITS_RAD + limit_tolerance_rad
        if np.any(over):
            row, joint = np.argwhere(over)[0]
            value = np.atleast_2d(q)[row, joint]
            raise ValueError(
                f"joint {JOINT_NAMES[joint]} = {np.rad2deg(value):.3f} deg in configuration "
                f"{row} exceeds its limit of ±{np.rad2deg(JOINT_LIMITS_RAD[joint]):.0f} deg"
            )
    return q


def _axis_rotations(angles: np.ndarray, axis: int, sign: float) -> np.ndarray:
    """(N,) angles -> (N, 3, 3) rotations about coordinate ``axis`` scaled by ``sign``."""
    c, s = np.cos(angles), sign * np.sin(angles)
    rot = np.zeros((angles.shape[0], 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]  # the plane rotated by a rotation about ``axis``
    rot[:, axis, axis] = 1.0
    rot[:, i, i] = c
    rot[:, j, j] = c
    rot[:, i, j] = -s
    rot[:, j, i] = s
    return rot


def link_transforms(
    joint_positions_rad: np.ndarray,
    *,
    check_limits: bool = True,
    limit_tolerance_rad: float = 1e-6,
) -> np.ndarray:
    """Poses of every link frame in ``lbr_link_0``, mm.

    Args:
        joint_positions_rad: (7,) or (N, 7) joint angles A1..A7, rad.
        check_limits: raise when a joint exceeds its limit (plus ``limit_tolerance_rad``).
        limit_tolerance_rad: slack on the limits, for values read back from a controller.

    Returns:
        (9, 4, 4) or (N, 9, 4, 4) float64 ``T_link0_linkK`` for K = 0..7 then ``ee``;
        translations in mm.

    Raises:
        ValueError: wrong shape, non-finite value, or a joint beyond its limit.
    """
    q = _validate_joints(joint_positions_rad, check_limits, limit_tolerance_rad)
    single = q.ndim == 1
    q2 = np.atleast_2d(q)
    n = q2.shape[0]
    out = np.zeros((n, N_JOINTS + 2, 4, 4))
    out[:, :, 3, 3] = 1.0
    rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    pos = np.zeros((n, 3))
    out[:, 0, :3, :3] = rot
    for k, ((axis, sign), origin) in enumerate(zip(_JOINT_AXES, _JOINT_ORIGINS_MM, strict=True)):
        pos = pos + rot @ origin
        rot = rot @ _axis_rotations(q2[:, k], axis, sign)
        out[:, k + 1, :3, :3] = rot
        out[:, k + 1, :3, 3] = pos
    out[:, -1, :3, :3] = rot
    out[:, -1, :3, 3] = pos + rot @ _EE_OFFSET_MM
    return out[0] if single else out


def forward_kinematics(
    joint_positions_rad: np.ndarray,
    *,
    check_limits: bool = True,
    limit_tolerance_rad: float = 1e-6,
) -> np.ndarray:
    """Flange pose ``T_link0_ee`` of the iiwa 14 for one or many joint vectors.

    Args:
        joint_positions_rad: (7,) or (N, 7) joint angles A1..A7, rad.
        check_limits: raise when a joint exceeds its limit (plus ``limit_tolerance_rad``).
        limit_tolerance_rad: slack on the limits, rad.

    Returns:
        (4, 4) or (N, 4, 4) float64 homogeneous ``T_link0_ee``: ``lbr_link_ee`` in
        ``lbr_link_0``, translation in **millimetres**.

    Raises:
        ValueError: wrong shape, non-finite value, or a joint beyond its limit.
    """
    frames = link_transforms(
        joint_positions_rad, check_limits=check_limits, limit_tolerance_rad=limit_tolerance_rad
    )
    return frames[..., -1, :, :]
