"""A sweep that lost too many frames publishes no level as usable."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.completion.spine import LevelCompletion, SpineCompletionResult, cap_for_frame_loss


def _result(statuses: list[str]) -> SpineCompletionResult:
    levels = [
        LevelCompletion(lv, np.zeros((4, 3)), np.zeros(4), True, 100, 50, status=st)
        for lv, st in enumerate(statuses, start=1)
    ]
    return SpineCompletionResult(levels, np.eye(3), np.zeros((0, 3)), np.zeros(0), {}, {})


def test_usable_levels_become_insufficient_us_with_the_reason() -> None:
    res = _result(["ok", "us_only_fallback", "low_confidence", "ok"])
    assert cap_for_frame_loss(res, 0.42, 0.1) == [1, 2, 4]
    assert [lc.status for lc in res.levels] == [
        "insufficient_us",
        "insufficient_us",
        "low_confidence",
        "insufficient_us",
    ]
    assert res.levels[0].message == "the sweep lost 42.0 % of its frames (more than 10.0 %)"


@pytest.mark.parametrize("lost", [0.0, 0.05, 0.1])
def test_at_or_under_the_bound_nothing_changes(lost: float) -> None:
    res = _result(["ok", "ok"])
    assert cap_for_frame_loss(res, lost, 0.1) == []
    assert [lc.status for lc in res.levels] == ["ok", "ok"]


@pytest.mark.parametrize(
    ("lost", "bound", "message"),
    [
        (-0.1, 0.1, "lost_fraction: expected a fraction in 0..1, got -0.1"),
        (float("nan"), 0.1, "lost_fraction: expected a fraction in 0..1, got nan"),
        (0.2, 1.5, "max_lost_fraction: expected a fraction in 0..1, got 1.5"),
    ],
)
def test_bad_fractions_are_named(lost: float, bound: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cap_for_frame_loss(_result(["ok"]), lost, bound)
