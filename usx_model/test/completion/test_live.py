"""Live completion: a level is completed once covered, again only when it grew, never
after the sweep's final completion."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.completion.live import LivePolicy, LiveSpine
from usx_model.completion.spine import LevelCompletion, SpineCompletionResult


def _result(levels: dict[int, str], tag: float = 0.0) -> SpineCompletionResult:
    out = [
        LevelCompletion(lv, np.full((4, 3), tag), np.zeros(4), True, 100, 50, status=st)
        for lv, st in levels.items()
    ]
    return SpineCompletionResult(out, np.eye(3), np.zeros((0, 3)), np.zeros(0), {}, {})


def test_a_level_is_due_once_covered_and_again_only_after_growth_and_time() -> None:
    live = LiveSpine("s1", LivePolicy(min_period_s=1.0, min_gain=0.1, max_levels=5))
    cov = {1: 0.2, 2: 0.6}
    assert live.due(cov, {1: False, 2: True}, 10.0) == (2,)
    live.update(_result({2: "ok"}), cov, 10.0)
    # covered, but completed just now: not due, however much it grew
    assert live.due({1: 0.2, 2: 0.9}, {1: False, 2: True}, 10.5) == ()
    # time passed, too little growth
    assert live.due({1: 0.2, 2: 0.65}, {1: False, 2: True}, 12.0) == ()
    # time passed and grew by the gain
    assert live.due({1: 0.55, 2: 0.75}, {1: True, 2: True}, 12.0) == (1, 2)
    assert live.covered_at_s == {2: 10.0, 1: 12.0}


def test_a_completed_level_is_due_again_once_it_has_many_more_points() -> None:
    # a later pass adds points but no coverage: due once 30 % more of its own points are in
    live = LiveSpine("s1", LivePolicy(min_period_s=1.0, min_gain=0.1, min_growth=0.3, max_levels=5))
    cov, done = {3: 0.9, 4: 0.9}, {3: True, 4: True}
    assert live.due(cov, done, 0.0, {3: 1000, 4: 500}) == (3, 4)
    live.update(_result({3: "ok", 4: "ok"}), cov, 0.0, {3: 1000, 4: 500})
    assert live.due(cov, done, 5.0, {3: 1299, 4: 649}) == ()
    assert live.due(cov, done, 0.5, {3: 2000, 4: 2000}) == ()  # too soon
    assert live.due(cov, done, 5.0, {3: 1300, 4: 600}) == (3,)  # L4's own points: +20 %
    assert live.due(cov, done, 5.0, None) == ()  # no counts: no growth rule


def test_at_most_max_levels_at_once_new_ones_first_then_the_longest_waiting() -> None:
    live = LiveSpine("s1", LivePolicy(min_period_s=0.0, min_gain=0.0, max_levels=2))
    cov = {lv: 0.9 for lv in range(1, 6)}
    done = dict.fromkeys(range(1, 6), True)
    assert live.due(cov, done, 0.0) == (1, 2)
    live.update(_result({1: "ok", 2: "ok"}), cov, 0.0)
    assert live.due(cov, done, 1.0) == (3, 4)  # never completed before those done
    live.update(_result({3: "ok", 4: "ok"}), cov, 1.0)
    live.update(_result({5: "ok"}), cov, 2.0)
    assert live.due(cov, done, 3.0) == (1, 2)  # all done: the longest-waiting


def test_the_spine_grows_and_keeps_the_latest_completion_of_each_level() -> None:
    live = LiveSpine("s1")
    live.update(_result({3: "ok"}, tag=1.0), {3: 0.6}, 0.0)
    spine = live.update(_result({2: "ok", 3: "ok"}, tag=2.0), {2: 0.5, 3: 0.9}, 2.0)
    assert [lc.level for lc in spine.levels] == [2, 3]
    assert all(lc.points_mm[0, 0] == 2.0 for lc in spine.levels)
    assert live.completed_levels == (2, 3)


def test_a_level_the_completion_could_not_produce_keeps_its_earlier_completion() -> None:
    live = LiveSpine("s1")
    live.update(_result({4: "ok"}, tag=1.0), {4: 0.6}, 0.0)
    spine = live.update(_result({4: "insufficient_input"}, tag=2.0), {4: 0.9}, 2.0)
    assert spine.levels[0].status == "ok" and spine.levels[0].points_mm[0, 0] == 1.0


def test_nothing_is_completed_live_after_the_final_completion() -> None:
    live = LiveSpine("s1")
    live.close()
    assert live.due({1: 1.0}, {1: True}, 0.0) == ()
    with pytest.raises(ValueError, match="sweep 's1': its live completion is closed"):
        live.update(_result({1: "ok"}), {1: 1.0}, 0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_period_s": -1.0}, "min_period_s: expected >= 0 s, got -1.0"),
        ({"min_period_s": float("nan")}, "min_period_s: expected >= 0 s, got nan"),
        ({"min_gain": 1.5}, "min_gain: expected a fraction in 0..1, got 1.5"),
        ({"min_growth": 0.0}, "min_growth: expected > 0, got 0.0"),
        ({"max_levels": 0}, "max_levels: expected an integer >= 1, got 0"),
    ],
)
def test_bad_policies_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LivePolicy(**kwargs)
