"""When a recording sweep sends its bone points so far."""

from __future__ import annotations

import pytest

from usx_model.compounding.live_points import LivePointsSchedule


def test_sends_once_covered_at_once_for_a_new_level_else_every_period() -> None:
    s = LivePointsSchedule(1.0)
    assert s.due("a", {1: False, 2: False}, 0.0) is None  # nothing covered yet
    assert s.due("a", {1: True, 2: False}, 0.1) == 0
    assert s.due("a", {1: True, 2: False}, 0.5) is None  # within the period
    assert s.due("a", {1: True, 2: True}, 0.6) == 1  # L2 just covered: at once
    assert s.due("a", {1: True, 2: True}, 1.2) is None
    assert s.due("a", {1: True, 2: True}, 1.6) == 2  # the period passed
    assert s.due("b", {1: True}, 1.7) == 0  # a new sweep starts its own count


def test_a_discarded_sweep_is_declared_void_only_if_its_points_went_out() -> None:
    s = LivePointsSchedule(1.0)
    assert s.discarded() is None
    s.due("a", {3: True}, 0.0)
    s.due("a", {3: True}, 2.0)
    assert s.discarded() == ("a", 2) and s.discarded() is None
    s.due("b", {3: True}, 3.0)
    s.closed()  # closed normally: nothing to withdraw
    assert s.discarded() is None


def test_a_zero_period_never_sends_and_a_bad_one_is_named() -> None:
    assert LivePointsSchedule(0.0).due("a", {1: True}, 0.0) is None
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="period_s: expected >= 0 s, got"):
            LivePointsSchedule(bad)


def test_the_closing_points_follow_the_sweeps_live_sends() -> None:
    s = LivePointsSchedule(1.0)
    assert s.closing("a") == 0  # no live send before: the first message of the sweep
    s.due("b", {2: True}, 0.0)
    s.due("b", {2: True}, 2.0)
    assert s.closing("b") == 2
    assert s.due("c", {1: True}, 3.0) == 0  # the next sweep counts from 0 again
