"""Plan a robotic ultrasound sweep for the KUKA iiwa 14: probe path, joint trajectory, timing.

The phantom stands in for the robot: it needs the joint states the lbr driver would stream
and the probe pose at which each US frame was acquired. Frames (mm):

- ``lbr_link_0`` (base): the robot base, z up;
- table (see ``usx_model.sim.phantom.spine``): x across the table, y up, z towards the head;
- spine (LPS): the phantom's frame, ``T_table_spine`` puts it on the table;
- probe (``us_probe``): see ``usx_model.sim.probe``; ``T_ee_probe`` is the hand-eye
  transform from the flange ``lbr_link_ee``.

``T_base_spine = T_base_table @ T_table_spine``. The probe path is the transverse
cranio-caudal sweep of :func:`usx_model.sim.probe.sweep_poses`, walked at constant
speed along its arc length; flange targets ``T_base_ee = T_base_probe @ inv(T_ee_probe)``
are solved by damped least squares, each seeded with the previous solution so that the
redundant arm follows one smooth branch. Joint samples lie on a uniform grid at
``joint_rate_hz``, frames on a grid at ``frame_rate_hz``, both starting at t = 0; the joint
grid ends at or after the last frame so every frame has joint samples around it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from usx_model.base.transforms import invert_transform, transform_from_xyz_rpy
from usx_model.sim._checks import check_pose, check_positive, check_spine
from usx_model.sim.phantom.types import Spine
from usx_model.sim.probe import sweep_poses
from usx_model.tracking.iiwa import JOINT_NAMES
from usx_model.tracking.iiwa_ik import inverse_kinematics

#: Default table placement: table top 0.6 m in front of the base (+x), 50 mm below the
#: base plane, the patient's head towards +y and posterior up (+z). With the default
#: hand-eye transform the flange then works ~0.2 m above the base, pointing down.
DEFAULT_TABLE_XYZ_MM = (600.0, 0.0, -50.0)
DEFAULT_TABLE_RPY_DEG = (90.0, 0.0, 180.0)

#: Flange pointing down 0.58 m in front of the base, elbow up (first IK seed).
SEED_JOINTS_RAD = np.deg2rad([0.0, 45.0, 0.0, -90.0, 0.0, 45.0, 0.0])

#: KUKA data sheet speed limits of the iiwa 14 R820, rad/s (85, 85, 100, 75, 130, 135, 135 deg/s).
JOINT_SPEED_LIMITS_RAD_S = np.deg2rad([85.0, 85.0, 100.0, 75.0, 130.0, 135.0, 135.0])

#: Lateral offsets of a three-pass serpentine sweep (mm): the lateral probe shifts of the
#: partial-view simulator (``simulate.us_partial``) that the network was trained on.
SERPENTINE_OFFSETS_MM = (-20.0, 0.0, 20.0)

_NS_PER_S = 1_000_000_000
_PATH_STEP_MM = 0.25  # arc-length sampling of the sweep path (finer than any frame spacing)


@dataclass(frozen=True)
class RobotSweep:
    """A planned sweep; times count from the start of the sweep.

    Attributes:
        joint_times_ns: (J,) int64 joint-sample times, uniform at the joint rate.
        joint_positions_rad: (J, 7) iiwa joint angles A1..A7 at those times.
        frame_times_ns: (F,) int64 image acquisition times, uniform at the frame rate.
        T_base_probe: (F, 4, 4) probe pose in ``lbr_link_0`` at each frame time, mm.
        T_spine_probe: (F, 4, 4) the same poses in the spine frame (what the frame shows).
        T_base_spine: (4, 4) spine frame in the base frame, mm.
        T_ee_probe: (4, 4) hand-eye transform used, mm.
        path_length_mm: arc length of the probe path.
        speed_mm_s: probe speed along the path (frames end exactly at the path's end).
        max_position_error_mm: worst IK flange position residual over all samples.
        max_rotation_error_rad: worst IK flange rotation residual.
    """

    joint_times_ns: np.ndarray
    joint_positions_rad: np.ndarray
    frame_times_ns: np.ndarray
    T_base_probe: np.ndarray
    T_spine_probe: np.ndarray
    T_base_spine: np.ndarray
    T_ee_probe: np.ndarray
    path_length_mm: float
    speed_mm_s: float
    max_position_error_mm: float
    max_rotation_error_rad: float

    @property
    def n_frames(self) -> int:
        return int(self.frame_times_ns.shape[0])

    @property
    def duration_ns(self) -> int:
        """Time of the last joint sample (>= the last frame time)."""
        return int(self.joint_times_ns[-1])

    def joint_positions_at(self, t_ns: np.ndarray) -> np.ndarray:
        """(M, 7) joint angles at (M,) times by linear interpolation (clamped at the ends)."""
        t = np.atleast_1d(np.asarray(t_ns, dtype=np.float64))
        q = self.joint_positions_rad
        return np.stack([np.interp(t, self.joint_times_ns, q[:, j]) for j in range(q.shape[1])], 1)


def default_table_pose() -> np.ndarray:
    """(4, 4) ``T_base_table`` of the default placement, mm."""
    return transform_from_xyz_rpy(DEFAULT_TABLE_XYZ_MM, DEFAULT_TABLE_RPY_DEG)


def table_from_spine(spine: Spine, body_height_mm: float = 140.0) -> np.ndarray:
    """``T_table_spine`` of a spine: its own ``frames["T_table_spine"]`` if it has one.

    A spine without it (e.g. a VerSe CT spine in scanner coordinates) is laid prone with
    its mean body centroid ``body_height_mm`` above the table-top centre (LPS posterior up
    is the table's y, so the rotation is the identity).
    """
    check_spine(spine)
    if "T_table_spine" in spine.frames:
        return check_pose(np.asarray(spine.frames["T_table_spine"]), "T_table_spine")
    centre = np.mean([v.body_centroid_mm for v in spine.vertebrae.values()], axis=0)
    T = np.eye(4)
    T[:3, 3] = np.array([0.0, body_height_mm, 0.0]) - centre
    return T


def _probe_path(
    spine: Spine,
    standoff_mm: float,
    margin_mm: float,
    lateral_offsets_mm: tuple[float, ...] = (0.0,),
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``T_spine_probe`` samples of the sweep and their cumulative arc length (mm).

    One cranio-caudal pass per lateral offset (along the spine's x, the probe's lateral
    axis), walked back and forth (a serpentine); consecutive passes are joined by a
    straight lateral move at their common end, orientation kept.
    """
    ends = sweep_poses(spine, 2, standoff_mm=standoff_mm, margin_mm=margin_mm)
    n = max(2, math.ceil(abs(ends[0, 2, 3] - ends[1, 2, 3]) / _PATH_STEP_MM) + 1)
    line = sweep_poses(spine, n, standoff_mm=standoff_mm, margin_mm=margin_mm)
    pieces = []
    for i, offset in enumerate(lateral_offsets_mm):
        pass_ = line[::-1].copy() if i % 2 else line.copy()
        pass_[:, 0, 3] += offset
        if pieces:
            a, b = pieces[-1][-1], pass_[0]
            m = max(2, math.ceil(np.linalg.norm(b[:3, 3] - a[:3, 3]) / _PATH_STEP_MM) + 1)
            move = np.repeat(a[None], m, axis=0)
            move[:, :3, 3] = np.linspace(a[:3, 3], b[:3, 3], m)
            pieces.append(move[1:-1])
        pieces.append(pass_)
    dense = np.concatenate(pieces)
    step = np.linalg.norm(np.diff(dense[:, :3, 3], axis=0), axis=1)
    return dense, np.r_[0.0, np.cumsum(step)]


def _poses_at(dense: np.ndarray, arc_mm: np.ndarray, s_mm: np.ndarray) -> np.ndarray:
    """Interpolate the dense path at arc lengths ``s_mm``: position linear, rotation slerp."""
    T = np.tile(np.eye(4), (len(s_mm), 1, 1))
    for k in range(3):
        T[:, k, 3] = np.interp(s_mm, arc_mm, dense[:, k, 3])
    T[:, :3, :3] = Slerp(arc_mm, Rotation.from_matrix(dense[:, :3, :3]))(s_mm).as_matrix()
    return T


def _solve_sequential(T_base_ee: np.ndarray, seed: np.ndarray) -> np.ndarray:
    """IK of (N, 4, 4) targets one after another, each seeded with the previous solution."""
    q = np.empty((len(T_base_ee), 7))
    for k, T in enumerate(T_base_ee):
        res = inverse_kinematics(T, seed, max_iterations=500 if k == 0 else 100)
        if not res.converged[0]:
            p = T[:3, 3]
            raise ValueError(
                f"sweep unreachable: no iiwa 14 configuration puts the flange at pose {k} "
                f"(flange at [{p[0]:.0f}, {p[1]:.0f}, {p[2]:.0f}] mm in the base frame; IK "
                f"residual {res.position_error_mm[0]:.1f} mm, "
                f"{np.rad2deg(res.rotation_error_rad[0]):.2f} deg); move the table "
                "(T_base_table) into the robot's workspace"
            )
        q[k] = seed = res.joint_positions_rad[0]
    return q


#: How far the sweep runs past the first and last spinous process, mm. The arch of L1 rises
#: above its spinous process (and L5's reaches below): a shorter overshoot misses L1's arch,
#: and L1 then completes worst (10 against 25 mm on 6 phantom spines: docs/results.md).
SWEEP_MARGIN_MM = 25.0


def plan_robot_sweep(
    spine: Spine,
    T_base_table: np.ndarray,
    T_ee_probe: np.ndarray,
    *,
    sweep_speed_mm_s: float,
    frame_rate_hz: float,
    joint_rate_hz: float,
    n_frames: int | None = None,
    standoff_mm: float = 20.0,
    margin_mm: float = SWEEP_MARGIN_MM,
    lateral_offsets_mm: tuple[float, ...] = (0.0,),
    seed_joints_rad: np.ndarray = SEED_JOINTS_RAD,
) -> RobotSweep:
    """Plan the probe path, the iiwa joint trajectory and the frame times of one sweep.

    Args:
        spine: the phantom (its ``frames["T_table_spine"]``, or see :func:`table_from_spine`).
        T_base_table: (4, 4) table in ``lbr_link_0``, mm.
        T_ee_probe: (4, 4) hand-eye transform, probe in the flange frame, mm.
        sweep_speed_mm_s: probe speed along the path; ignored when ``n_frames`` is given.
        frame_rate_hz: US frame rate.
        joint_rate_hz: joint-state rate (the lbr driver streams up to 1 kHz).
        n_frames: number of frames over the whole path (>= 2); sets the speed instead.
        standoff_mm, margin_mm: see :func:`usx_model.sim.probe.sweep_poses`; the
            overshoot should reach the end levels' arches (:data:`SWEEP_MARGIN_MM`).
        lateral_offsets_mm: one pass per entry, the probe shifted this far along the
            spine's lateral axis; passes alternate direction. The simulator the network
            was trained on sees the union of probe shifts of -20..20 mm, so
            ``SERPENTINE_OFFSETS_MM`` gives a sweep whose bone points match it.
        seed_joints_rad: (7,) start configuration of the first IK.

    Returns:
        RobotSweep. The frame count is rounded so that the last frame lies exactly at the
        end of the path (the speed is adjusted by less than half a frame's travel).

    Raises:
        ValueError: bad arguments; an unreachable probe pose (IK fails); a joint speed over
            the iiwa's limits (sweep too fast or passing near a singularity).
    """
    check_spine(spine)
    T_base_table = check_pose(T_base_table, "T_base_table")
    T_ee_probe = check_pose(T_ee_probe, "T_ee_probe")
    check_positive(frame_rate_hz, "frame_rate_hz")
    check_positive(joint_rate_hz, "joint_rate_hz")
    if n_frames is not None and n_frames < 2:
        raise ValueError(f"expected n_frames >= 2 (or None), got {n_frames}")
    if n_frames is None:
        check_positive(sweep_speed_mm_s, "sweep_speed_mm_s")

    T_base_spine = T_base_table @ table_from_spine(spine)
    offsets = tuple(float(o) for o in lateral_offsets_mm)
    if not offsets or not all(math.isfinite(o) for o in offsets):
        raise ValueError(f"expected at least one finite lateral offset, got {lateral_offsets_mm}")
    dense, arc = _probe_path(spine, standoff_mm, margin_mm, offsets)
    length = float(arc[-1])
    if n_frames is None:
        n_frames = max(2, round(length / sweep_speed_mm_s * frame_rate_hz) + 1)
    duration_s = (n_frames - 1) / frame_rate_hz
    speed = length / duration_s

    frame_s = np.arange(n_frames) / frame_rate_hz
    n_joints = math.ceil(duration_s * joint_rate_hz - 1e-9) + 1
    joint_s = np.arange(n_joints) / joint_rate_hz
    T_spine_probe = _poses_at(dense, arc, np.minimum(frame_s * speed, length))
    T_base_probe = T_base_spine @ T_spine_probe
    T_probe_ee = invert_transform(T_ee_probe)

    # Sequential IK along the frames fixes one smooth branch; the denser joint grid is then
    # solved in one batch, seeded by interpolating that branch in time.
    q_frames = _solve_sequential(T_base_probe @ T_probe_ee, np.asarray(seed_joints_rad))
    seeds = np.stack([np.interp(joint_s, frame_s, q_frames[:, j]) for j in range(7)], axis=1)
    T_joint_ee = T_base_spine @ _poses_at(dense, arc, np.minimum(joint_s * speed, length))
    res = inverse_kinematics(T_joint_ee @ T_probe_ee, seeds, max_iterations=100)
    if not res.converged.all():
        k = int(np.argmin(res.converged))
        raise ValueError(
            f"sweep unreachable: IK failed at joint sample {k} (t = {joint_s[k]:.3f} s, "
            f"residual {res.position_error_mm[k]:.2f} mm); move the table (T_base_table)"
        )
    q = res.joint_positions_rad
    _check_joint_speeds(q, 1.0 / joint_rate_hz)
    return RobotSweep(
        joint_times_ns=np.rint(joint_s * _NS_PER_S).astype(np.int64),
        joint_positions_rad=q,
        frame_times_ns=np.rint(frame_s * _NS_PER_S).astype(np.int64),
        T_base_probe=T_base_probe,
        T_spine_probe=T_spine_probe,
        T_base_spine=T_base_spine,
        T_ee_probe=T_ee_probe,
        path_length_mm=length,
        speed_mm_s=speed,
        max_position_error_mm=float(res.position_error_mm.max()),
        max_rotation_error_rad=float(res.rotation_error_rad.max()),
    )


def _check_joint_speeds(q: np.ndarray, dt_s: float) -> None:
    if len(q) < 2:
        return
    speed = np.abs(np.diff(q, axis=0)) / dt_s
    ratio = speed / JOINT_SPEED_LIMITS_RAD_S
    k, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[k, j] > 1.0:
        raise ValueError(
            f"joint {JOINT_NAMES[j]} would move at {np.rad2deg(speed[k, j]):.0f} deg/s near "
            f"t = {k * dt_s:.2f} s, over its limit of "
            f"{np.rad2deg(JOINT_SPEED_LIMITS_RAD_S[j]):.0f} deg/s: lower the sweep speed or "
            "move the table away from a singular configuration"
        )
