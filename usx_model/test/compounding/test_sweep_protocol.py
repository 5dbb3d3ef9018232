"""The RecordSweep protocol: goals refused with their reasons, the sweep's states, motion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from usx_model.compounding.bone_sweep import FrameReport
from usx_model.compounding.sweep_protocol import (
    Outcome,
    ProbeMotion,
    SweepGoal,
    SweepProtocol,
    SweepState,
)


def _running(goal: SweepGoal | None = None) -> SweepProtocol:
    goal = goal or SweepGoal("s1", ("L1", "L2"), 0.0)
    p = SweepProtocol(max_duration_s=100.0)
    assert p.begin(goal, now_s=10.0) is None
    return p


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        (SweepGoal(""), "invalid sweep_id '': expected 1-64 letters"),
        (SweepGoal("a b"), "invalid sweep_id 'a b'"),
        (SweepGoal("x" * 65), "invalid sweep_id"),
        (SweepGoal("s2", ("L1", "T12")), "unknown levels ['T12']: expected some of"),
        (SweepGoal("s2", ("L1", "L1")), "levels ['L1', 'L1'] repeat a level"),
        (SweepGoal("s2", (), -1.0), "duration_s -1.0: expected 0 (until stopped) to 100 s"),
        (SweepGoal("s2", (), 101.0), "duration_s 101.0"),
        (SweepGoal("s2", (), math.nan), "duration_s nan"),
    ],
)
def test_a_bad_goal_is_refused_with_what_was_expected(goal, message) -> None:
    p = SweepProtocol(max_duration_s=100.0)
    reason = p.begin(goal, now_s=0.0)
    assert reason is not None and message in reason
    assert p.state is SweepState.IDLE and p.goal is None


def test_a_goal_while_a_sweep_runs_is_refused_and_the_sweep_runs_on() -> None:
    p = _running()
    reason = p.begin(SweepGoal("s2"), now_s=11.0)
    assert reason == "sweep 's1' is recording: cancel it or wait for its result before sending 's2'"
    assert p.state is SweepState.RECORDING and p.goal.sweep_id == "s1"
    p.stopping()
    assert "is closing" in p.begin(SweepGoal("s2"), now_s=12.0)
    assert p.refused["sweep"] == 2


def test_an_id_is_never_used_twice() -> None:
    p = _running()
    p.stopping()
    p.closed("done")
    assert "was used before" in p.begin(SweepGoal("s1"), now_s=20.0)
    assert p.begin(SweepGoal("s2"), now_s=20.0) is None


def test_streams_not_live_refuse_the_goal_and_leave_its_id_free() -> None:
    p = SweepProtocol()
    reason = p.begin(SweepGoal("s1"), now_s=0.0, not_ready="no probe pose yet")
    assert reason == "sweep 's1' not started: no probe pose yet"
    assert p.begin(SweepGoal("s1"), now_s=1.0) is None  # asking again later works


def test_a_sweep_is_due_to_stop_after_its_duration_only() -> None:
    p = _running(SweepGoal("s1", (), 5.0))
    assert not p.stop_due(14.9) and p.stop_due(15.0)
    p.stopping()
    assert not p.stop_due(20.0)  # stopping already
    assert not _running().stop_due(1e9)  # duration 0: until the stop service


def test_success_goes_through_closing() -> None:
    p = _running()
    with pytest.raises(RuntimeError, match="cannot close a sweep that is recording"):
        p.closed("x")
    p.stopping()
    ended = p.closed("12 frames placed")
    assert (ended.goal.sweep_id, ended.outcome, ended.message) == (
        "s1",
        Outcome.SUCCEEDED,
        "12 frames placed",
    )
    assert p.state is SweepState.IDLE and p.goal is None
    with pytest.raises(RuntimeError, match="cannot stop a sweep that is idle"):
        p.stopping()


@pytest.mark.parametrize("closing", [False, True], ids=["recording", "closing"])
def test_cancel_and_abort_discard_the_sweep_in_either_state(closing: bool) -> None:
    for end, outcome, text in [
        (lambda p: p.cancel(), Outcome.CANCELLED, "cancelled: 1 placed frames discarded"),
        (lambda p: p.abort("client lost"), Outcome.ABORTED, "aborted: client lost"),
    ]:
        p = _running()
        p.frame(FrameReport(1, True, origin_mm=(0.0, 0.0, 0.0)))
        if closing:
            p.stopping()
        ended = end(p)
        assert ended.outcome is outcome and text in ended.message
        assert p.state is SweepState.IDLE and p.feedback(0.0) is None
    idle = SweepProtocol()
    assert idle.cancel() is None and idle.abort("x") is None


def test_feedback_counts_placed_and_dropped_frames() -> None:
    p = _running()
    for i in range(4):
        p.frame(FrameReport(i * 10**8, True, origin_mm=(0.0, 0.0, i * 1.0)))
    p.frame(FrameReport(5, False, reason="no_contact"))
    p.frame(FrameReport(6, False, reason="no_pose"))
    p.frame(FrameReport(7, False, reason="no_contact"))
    fb = p.feedback(now_s=12.5)
    assert fb["sweep_id"] == "s1" and fb["state"] == "recording"
    assert fb["elapsed_s"] == pytest.approx(2.5)
    assert fb["frames_placed"] == 4
    assert fb["drops"] == {"no_contact": 2, "no_pose": 1}
    assert fb["frame_spacing_mm"] == pytest.approx(1.0)
    assert fb["probe_speed_mm_s"] == pytest.approx(10.0)
    assert fb["warnings"] == []


def test_motion_against_a_naive_median() -> None:
    rng = np.random.default_rng(3)
    m = ProbeMotion(max_frame_spacing_mm=2.0, window=5)
    stamps = np.cumsum(rng.integers(10**7, 5 * 10**7, 20))
    pos = np.cumsum(rng.normal(size=(20, 3)), axis=0)
    for t, x in zip(stamps, pos, strict=True):
        m.placed(int(t), x)
    d = np.linalg.norm(np.diff(pos, axis=0), axis=1)[-5:]
    dt = np.diff(stamps)[-5:] * 1e-9
    assert m.frame_spacing_mm == pytest.approx(np.median(d))
    assert m.speed_mm_s == pytest.approx(np.median(d / dt))


def test_a_fast_probe_is_warned_about_with_the_speed_that_would_do() -> None:
    m = ProbeMotion(max_frame_spacing_mm=2.0)
    for i in range(10):  # 30 Hz, 3 mm per frame = 90 mm/s
        m.placed(int(i * 1e9 / 30), (0.0, 3.0 * i, 0.0))
    assert m.warning() == (
        "probe too fast for the frame rate: 3.0 mm between frames at 90 mm/s "
        "(at most 2 mm: slow down to 60 mm/s)"
    )
    assert m.too_fast_frames == 9
    slow = ProbeMotion(max_frame_spacing_mm=2.0)
    for i in range(10):
        slow.placed(int(i * 1e9 / 30), (0.0, 1.0 * i, 0.0))
    assert slow.warning() is None and slow.too_fast_frames == 0
    with pytest.raises(ValueError, match="max_frame_spacing_mm must be > 0, got 0"):
        ProbeMotion(0.0)
