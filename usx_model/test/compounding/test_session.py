"""The compounding node's sweep protocol (start/stop/reset, late frames, closing), no ROS."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from usx_model.compounding.bone_sweep import FrameReport
from usx_model.compounding.session import Closing, SessionTiming, StampRejected, SweepSession

MS = 1_000_000  # ns
TIMING = SessionTiming(stop_settle_s=0.05, stop_grace_s=1.0, stop_timeout_s=10.0)
IMAGE = np.zeros((4, 4), np.uint8)
HOUR_NS = 3600 * 10**9


class FakePoses:
    def __init__(self, generation: int = 0) -> None:
        self.generation = generation

    def restarted(self) -> FakePoses:
        return FakePoses(self.generation + 1)


class FakeSweep:
    """What the session uses of a BoneSweep; frames are held until ``flush``."""

    def __init__(self, poses: FakePoses | None, log: list) -> None:
        self.sweep = SimpleNamespace(poses=poses or FakePoses())
        self.log = log
        self.held: list[int] = []
        self.frames_placed = 0
        self.dropped = {"no_contact": 0}
        self.pose_reason: str | None = None

    @property
    def received_stamps_ns(self) -> np.ndarray:
        return np.array([s for kind, s in self.log if kind == "frame"], dtype=np.int64)

    @property
    def pending(self) -> int:
        return len(self.held)

    def add_pose(self, stamp_ns, T):
        self.log.append(("pose", stamp_ns))
        return self.pose_reason, []

    def add_frame(self, stamp_ns, image):
        if image.ndim != 2:
            raise ValueError("expected a 2D image")
        self.log.append(("frame", stamp_ns))
        self.held.append(stamp_ns)
        return []

    def flush(self):
        out = [FrameReport(s, placed=False, reason="no_pose") for s in self.held]
        self.held = []
        return out


def _session(timing: SessionTiming = TIMING):
    log, made = [], []

    def new_sweep(poses):
        made.append(poses)
        return FakeSweep(poses, log)

    return SweepSession(new_sweep, timing), made, log


def test_the_first_sweep_is_made_at_construction_and_fails_there():
    session, made, _ = _session()
    assert made == [None] and not session.active and session.closing is None

    def too_big(_poses):
        raise ValueError("volume exceeds the memory budget")

    with pytest.raises(ValueError, match="memory budget"):
        SweepSession(too_big, TIMING)


STOPPING = "sweep stopping: 0 frames placed so far"
STARTED = "sweep 'sweep-1' started"  # the first sweep started without an id


@pytest.mark.parametrize(
    ("ops", "messages", "active", "closing"),
    [
        (["start"], [STARTED], True, False),
        (["start", "start"], [STARTED, "sweep already active"], True, False),
        (["stop"], ["no active sweep"], False, False),
        (["start", "stop"], [STARTED, STOPPING], False, True),
        (["start", "stop", "stop"], [STARTED, STOPPING, "no active sweep"], False, True),
        (["start", "reset"], [STARTED, "sweep discarded"], False, False),
        (["start", "stop", "reset"], [STARTED, STOPPING, "sweep discarded"], False, False),
        (
            ["start", "stop", "close", "start"],
            [STARTED, STOPPING, "closed", "sweep 'sweep-2' started"],
            True,
            False,
        ),
    ],
)
def test_start_stop_reset_transitions(ops, messages, active, closing):
    session, _, _ = _session()
    got = []
    for op in ops:
        if op == "stop":
            got.append(session.stop(now_s=10.0, clock_ns=0))
        elif op == "close":
            session.close()
            got.append("closed")
        else:
            got.append(getattr(session, op)())
    assert got == messages
    assert session.active is active and (session.closing is not None) is closing


def test_every_sweep_has_an_id_its_own_or_the_next_unnamed_one():
    session, _, _ = _session()
    assert session.sweep_id == ""
    ids = []
    for given in ("", "goal-7", ""):
        session.start(given)
        ids.append(session.sweep_id)
        session.stop(now_s=1.0, clock_ns=0)
        session.close()
    assert ids == ["sweep-1", "goal-7", "sweep-2"]
    assert session.sweep_id == "sweep-2"  # the closed sweep's, until the next start


def test_a_closing_sweep_must_be_closed_before_the_next_start():
    session, _, _ = _session()
    session.start()
    session.stop(now_s=1.0, clock_ns=0)
    with pytest.raises(RuntimeError, match="close the stopped sweep"):
        session.start()


def test_every_new_sweep_carries_the_pose_buffer_on():
    session, made, _ = _session()
    session.start()
    session.reset()
    session.start()
    assert [None if p is None else p.generation for p in made] == [None, 1, 2, 3]


def test_frames_outside_sweeps_are_counted_not_taken():
    session, _, log = _session()
    assert not session.takes_frame(100 * MS) and session.frames_outside_sweeps == 1
    session.start()
    assert session.takes_frame(200 * MS) and session.frames_outside_sweeps == 1
    session.add_frame(200 * MS, IMAGE, lambda: 0)
    assert log == [("frame", 200 * MS)] and session.frames_after_stop == 0


def test_frames_acquired_before_the_stop_are_still_taken():
    session, _, _ = _session(SessionTiming(pose_tolerance_s=0.05))
    session.start()
    session.add_frame(1000 * MS, IMAGE, lambda: 7000 * MS)  # arrived at node clock 7 s
    session.stop(now_s=3.0, clock_ns=7020 * MS)  # 20 ms later: acquired up to ~1020 ms
    assert session.closing == Closing(since=3.0, last_stamp_ns=1020 * MS)
    cases = [(1030 * MS, True), (1070 * MS, True), (1070 * MS + 1, False), (1100 * MS, False)]
    for stamp, taken in cases:
        assert session.takes_frame(stamp) is taken, stamp
    assert session.frames_outside_sweeps == 2
    session.add_frame(1030 * MS, IMAGE, lambda: 0)
    assert session.frames_after_stop == 1 and session.sweep.pending == 2


def test_a_stop_before_any_frame_takes_no_late_frame():
    session, _, _ = _session()
    session.start()
    session.stop(now_s=1.0, clock_ns=5 * MS)
    assert session.closing.last_stamp_ns is None
    assert not session.takes_frame(0) and session.frames_outside_sweeps == 1


def test_the_arrival_clock_is_read_after_the_frame_is_in():
    session, _, log = _session()
    session.start()
    session.add_frame(5, IMAGE, lambda: log.append("clock") or 42)
    assert log == [("frame", 5), "clock"] and session.last_image_at_ns == 42


@pytest.mark.parametrize(
    ("stamp", "reason"), [(5, "out_of_order"), (4, "out_of_order"), (5 + HOUR_NS, "stamp_jump")]
)
def test_refused_frame_stamps_raise_and_change_nothing(stamp, reason):
    session, _, log = _session()
    session.start()
    session.add_frame(5, IMAGE, lambda: 1)
    with pytest.raises(StampRejected, match="against the last 5 ns") as exc:
        session.add_frame(stamp, IMAGE, lambda: 2)
    assert exc.value.reason == reason
    assert session.last_image_ns == 5 and session.last_image_at_ns == 1 and len(log) == 1


def test_one_future_stamped_frame_does_not_block_the_sweep():
    # Issue 26: one image stamped an hour ahead made every later frame "out of order".
    session, _, log = _session()
    session.start()
    session.add_frame(5, IMAGE, lambda: 1)
    with pytest.raises(StampRejected):
        session.add_frame(5 + HOUR_NS, IMAGE, lambda: 2)
    session.add_frame(6, IMAGE, lambda: 3)
    assert session.last_image_ns == 6 and [e for e in log if e[0] == "frame"] == [
        ("frame", 5),
        ("frame", 6),
    ]


def test_an_invalid_frame_raises_and_changes_nothing():
    session, _, _ = _session()
    session.start()
    with pytest.raises(ValueError, match="2D"):
        session.add_frame(5, np.zeros(3, np.uint8), lambda: 1)
    assert session.last_image_ns == -1


def test_a_new_sweep_restarts_the_frame_order():
    session, _, _ = _session()
    session.start()
    session.add_frame(5, IMAGE, lambda: 1)
    session.stop(now_s=1.0, clock_ns=1)
    session.close()
    session.start()
    session.add_frame(5, IMAGE, lambda: 1)  # a replay may reuse stamps


@pytest.mark.parametrize("reason", [None, "stale"])
def test_poses(reason):
    session, _, log = _session()
    session.sweep.pose_reason = reason
    assert math.isinf(session.pose_age_s(100.0))
    got = session.add_pose(7, np.eye(4), lambda: log.append("clock") or 99.0)
    assert got == (reason, [])
    if reason is None:
        assert log == [("pose", 7), "clock"] and session.pose_age_s(100.0) == 1.0
    else:
        assert log == [("pose", 7)] and math.isinf(session.pose_age_s(100.0))


@pytest.mark.parametrize(
    ("name", "since_s", "pending", "last_pose_s", "now_s", "due"),
    [
        ("settling", 10.0, 0, -math.inf, 10.049, False),
        ("settled, nothing held", 10.0, 0, -math.inf, 10.05, True),
        ("held, poses flowing", 10.0, 1, 10.5, 11.4, False),
        ("held, poses stopped for stop_grace_s", 10.0, 1, 10.5, 11.5, True),
        ("held, no pose since the stop", 10.0, 1, 5.0, 11.0, True),
        ("held, within the grace of the stop", 10.0, 1, 5.0, 10.9, False),
        ("held, poses flowing past stop_timeout_s", 10.0, 1, 19.9, 20.0, True),
    ],
)
def test_when_a_stopped_sweep_closes(name, since_s, pending, last_pose_s, now_s, due):
    session, _, _ = _session()
    assert not session.close_due(now_s)  # nothing to close
    session.start()
    for i in range(pending):
        session.add_frame(i, IMAGE, lambda: 0)
    session.add_pose(0, np.eye(4), lambda: last_pose_s)
    session.stop(now_s=since_s, clock_ns=0)
    assert session.close_due(now_s) is due, name


def test_close_flushes_held_frames_and_counts_the_sweep():
    session, _, _ = _session()
    session.start()
    session.add_frame(3, IMAGE, lambda: 0)
    session.stop(now_s=1.0, clock_ns=0)
    reports = session.close()
    assert [(r.stamp_ns, r.placed, r.reason) for r in reports] == [(3, False, "no_pose")]
    assert session.closing is None and session.sweeps_completed == 1 and not session.active


def test_refused_frames_count_toward_the_sweeps_frame_loss():
    session, _, _ = _session()
    session.start()
    period = 16_666_667  # 60 Hz
    for k in range(10):
        session.add_frame(k * period, IMAGE, lambda: 0)
    with pytest.raises(ValueError, match="2D image"):
        session.add_frame(10 * period, np.zeros((2, 2, 2), np.uint8), lambda: 0)
    with pytest.raises(StampRejected):
        session.add_frame(10 * period + HOUR_NS, IMAGE, lambda: 0)
    session.reject_frame()  # a message that did not even convert to an image
    loss = session.frame_loss()
    assert session.frames_rejected == 3
    # 10 taken + 3 refused; none placed by the fake sweep, so all 13 are lost
    assert (loss.expected, loss.placed, loss.lost) == (13, 0, 13)
    session.reset()
    assert session.frames_rejected == 0
