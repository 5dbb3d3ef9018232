"""tracking.stamps.StampGuard: table-driven stamp sequences and their verdicts."""

from __future__ import annotations

import pytest

from usx_model.tracking.stamps import OUT_OF_ORDER, STAMP_JUMP, StampGuard

S = 1_000_000_000  # ns per second
HOUR = 3600 * S


def _run(stamps, max_step_ns=S, recover_count=3):
    g = StampGuard(max_step_ns, recover_count)
    return [g.check(t) for t in stamps], g


@pytest.mark.parametrize(
    ("stamps", "verdicts", "rebased"),
    [
        # a steady 100 Hz stream
        ([0, S // 100, 2 * S // 100], [None, None, None], 0),
        # a duplicate and an older stamp: rejected, the stream goes on
        ([10, 20, 20, 15, 30], [None, None, OUT_OF_ORDER, OUT_OF_ORDER, None], 0),
        # one message an hour ahead: rejected and not adopted; the next real one is fine
        ([10, 20, HOUR, 30, 40], [None, None, STAMP_JUMP, None, None], 0),
        # the source's clock stepped forward: after 3 consistent stamps it is followed
        (
            [0, 10, HOUR, HOUR + 10, HOUR + 20, HOUR + 30],
            [None, None, STAMP_JUMP, STAMP_JUMP, None, None],
            1,
        ),
        # a bag looped back to its start: re-anchored on the repeated stamps
        (
            [5 * S, 6 * S, S, S + 10, S + 20, S + 30],
            [None, None, OUT_OF_ORDER, OUT_OF_ORDER, None, None],
            1,
        ),
        # rejected stamps that are not consistent among themselves never re-anchor
        (
            [HOUR, 0, 2 * HOUR, 5, 3 * HOUR, HOUR + 1],
            [None, OUT_OF_ORDER, STAMP_JUMP, OUT_OF_ORDER, STAMP_JUMP, None],
            0,
        ),
    ],
)
def test_sequences(stamps, verdicts, rebased):
    got, g = _run(stamps)
    assert got == verdicts
    assert g.rebased == rebased


def test_the_reference_is_the_last_accepted_stamp():
    g = StampGuard(S, 3)
    for t in (10, HOUR, 30):
        g.check(t)
    assert g.last_ns == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 3), "max_step_ns: expected > 0, got 0"), ((S, 1), "recover_count: expected >= 2")],
)
def test_bad_settings(args, message):
    with pytest.raises(ValueError, match=message):
        StampGuard(*args)
