"""The robot's calibration motions over the plate (``sim.plate``), as joint trajectories.

``spatial``: the probe stops at poses over the plate (heights, tilts about both probe
axes, turns about the beam; ``plate.spatial_poses``) and moves between them by a
minimum-jerk joint motion; a robot can hold a pose still, so the spatial calibration
uses only frames taken while it does, and no clock offset can spoil it. ``temporal``:
the probe heaves up and down along the plate normal (``plate.heave_heights_mm``).
``degenerate``: the spatial motion without tilts or turns, which cannot determine the
calibration. Times count from the scene's start, ns; lengths mm.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from usx_model.base.transforms import invert_transform, transform_from_xyz_rpy
from usx_model.sim.plate import (
    heave_heights_mm,
    probe_over_plate,
    spatial_poses,
    translation_only_poses,
)
from usx_model.sim.robot_sweep import SEED_JOINTS_RAD
from usx_model.tracking.iiwa import forward_kinematics
from usx_model.tracking.iiwa_ik import inverse_kinematics

KINDS = ("spatial", "temporal", "degenerate")
#: the water bath's plate in front of the robot, on the table (xyz mm, rpy deg)
PLATE_XYZ_MM = (600.0, 0.0, 0.0)
PLATE_RPY_DEG = (0.0, 0.0, 20.0)


@dataclass(frozen=True)
class CalibrationScene:
    """A planned calibration motion.

    Attributes:
        joint_times_ns: (J,) tracking sample times.
        joint_positions_rad: (J, 7) iiwa joint angles.
        frame_times_ns: (F,) image acquisition times.
        T_base_plate: (4, 4) the plate in the base frame.
        T_plate_probe: (F, 4, 4) the true probe pose at each frame's acquisition.
    """

    joint_times_ns: np.ndarray
    joint_positions_rad: np.ndarray
    frame_times_ns: np.ndarray
    T_base_plate: np.ndarray
    T_plate_probe: np.ndarray


def _ik_chain(T_base_ee: np.ndarray) -> np.ndarray:
    q, seed = np.empty((len(T_base_ee), 7)), SEED_JOINTS_RAD
    for k, T in enumerate(T_base_ee):
        res = inverse_kinematics(T, seed, max_iterations=500)
        if not res.converged[0]:
            raise ValueError(f"calibration pose {k} is out of the iiwa's reach")
        q[k] = seed = res.joint_positions_rad[0]
    return q


def _min_jerk(s: np.ndarray) -> np.ndarray:
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def plan_calibration_scene(
    kind: str,
    seed: int,
    T_ee_probe: np.ndarray,
    frame_rate_hz: float = 15.0,
    joint_rate_hz: float = 100.0,
    n_poses: int = 36,
    dwell_s: float = 0.5,
    move_s: float = 0.8,
    heave_s: float = 8.0,
) -> CalibrationScene:
    """Plan ``kind`` (one of ``KINDS``) with the probe mounted by ``T_ee_probe`` (4, 4).

    Raises:
        ValueError: unknown kind, or a pose the arm cannot reach.
    """
    if kind not in KINDS:
        raise ValueError(f"expected a calibration scene kind in {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    T_base_plate = transform_from_xyz_rpy(PLATE_XYZ_MM, PLATE_RPY_DEG)
    T_probe_ee = invert_transform(T_ee_probe)
    dt = 1.0 / joint_rate_hz
    if kind == "temporal":
        t = np.arange(0.0, heave_s, dt)
        tilt = rng.uniform(-8, 8, 2)
        stops = np.stack([probe_over_plate(h, *tilt) for h in heave_heights_mm(t)])
        q = _ik_chain(T_base_plate @ stops @ T_probe_ee)
    else:
        P = (
            spatial_poses(rng, n_poses)
            if kind == "spatial"
            else translation_only_poses(rng, n_poses)
        )
        q_stop = _ik_chain(T_base_plate @ P @ T_probe_ee)
        n_dwell, n_move = round(dwell_s / dt), round(move_s / dt)
        pieces = [np.repeat(q_stop[:1], n_dwell, axis=0)]
        for a, b in itertools.pairwise(q_stop):
            s = _min_jerk(np.arange(1, n_move + 1) / n_move)[:, None]
            pieces += [a + s * (b - a), np.repeat(b[None], n_dwell, axis=0)]
        q = np.concatenate(pieces)
        t = np.arange(len(q)) * dt
    joint_ns = np.round(t * 1e9).astype(np.int64)
    frames = np.arange(0.0, t[-1], 1.0 / frame_rate_hz)
    frame_ns = np.round(frames * 1e9).astype(np.int64)
    q_f = np.stack([np.interp(frames, t, q[:, j]) for j in range(7)], axis=1)
    T_plate_probe = invert_transform(T_base_plate) @ forward_kinematics(q_f) @ T_ee_probe
    return CalibrationScene(joint_ns, q, frame_ns, T_base_plate, T_plate_probe)
