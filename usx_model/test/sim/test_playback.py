"""A planned sweep played pass by pass: joint samples and frames due at a time."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.sim.playback import SweepPass
from usx_model.sim.robot_sweep import RobotSweep

MS = 1_000_000  # ns
T0 = 1000 * MS


def _plan() -> RobotSweep:
    """5 joint samples every 10 ms, frames at 0, 15 and 33 ms."""
    eye = np.broadcast_to(np.eye(4), (3, 4, 4))
    return RobotSweep(
        joint_times_ns=np.arange(5, dtype=np.int64) * 10 * MS,
        joint_positions_rad=np.arange(35, dtype=float).reshape(5, 7),
        frame_times_ns=np.array([0, 15, 33], dtype=np.int64) * MS,
        T_base_probe=eye,
        T_spine_probe=eye,
        T_base_spine=np.eye(4),
        T_ee_probe=np.eye(4),
        path_length_mm=10.0,
        speed_mm_s=10.0,
        max_position_error_mm=0.0,
        max_rotation_error_rad=0.0,
    )


def _play(sweep_pass: SweepPass, times_ms):
    """[(joint stamps sent, frames sent as (position, stamp)), ...] at each time."""
    out = []
    for t in times_ms:
        now = T0 + t * MS
        joints = [(stamp - T0) // MS for stamp, _ in sweep_pass.due_joints(now)]
        frames = []
        while (due := sweep_pass.due_frame()) is not None:
            frames.append((due[0], (due[1] - T0) // MS))
            sweep_pass.frame_sent()
        out.append((joints, frames))
    return out


@pytest.mark.parametrize(
    ("index", "order", "frames_ms", "played"),
    [
        (
            0,
            [0, 1, 2],
            [0, 15, 33],
            [
                ([], []),  # nothing before t0
                ([0], [(0, 0)]),
                ([10, 20], [(1, 15)]),  # frame at 15 ms waits for the 20 ms sample
                ([30], []),  # frame at 33 ms waits for the 40 ms sample
                ([40], [(2, 33)]),
            ],
        ),
        (
            3,  # odd passes play backwards: frame times mirrored within the 40 ms pass
            [2, 1, 0],
            [7, 25, 40],
            [
                ([], []),
                ([0], []),
                ([10, 20], [(0, 7)]),
                ([30], [(1, 25)]),
                ([40], [(2, 40)]),
            ],
        ),
    ],
)
def test_a_pass_plays_in_order(index, order, frames_ms, played):
    plan = _plan()
    sweep_pass = SweepPass(plan, index)
    np.testing.assert_array_equal(sweep_pass.order, order)
    np.testing.assert_array_equal(sweep_pass.frame_ns, np.array(frames_ms) * MS)
    sweep_pass.begin(T0)
    assert _play(sweep_pass, [-1, 0, 20, 39, 40]) == played
    assert sweep_pass.finished
    forward = index % 2 == 0
    np.testing.assert_array_equal(sweep_pass.last_q, plan.joint_positions_rad[-1 if forward else 0])


def test_joint_positions_follow_the_direction():
    plan = _plan()
    backward = SweepPass(plan, 1)
    backward.begin(0)
    q = [q for _, q in backward.due_joints(40 * MS)]
    np.testing.assert_array_equal(q, plan.joint_positions_rad[::-1])


def test_a_frame_not_taken_stays_due_and_begin_restarts():
    sweep_pass = SweepPass(_plan(), 0)
    sweep_pass.begin(T0)
    list(sweep_pass.due_joints(T0 + 40 * MS))
    assert sweep_pass.due_frame() == (0, T0) == sweep_pass.due_frame()  # not sent yet
    assert not sweep_pass.finished
    sweep_pass.begin(T0 + 100 * MS)
    assert sweep_pass.due_frame() is None and list(sweep_pass.due_joints(T0)) == []
