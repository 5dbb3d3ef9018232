"""The phantom's sweep-start handshake as a plain state machine (no ROS, no clock)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest

from usx_ros.sim.handshake import (
    Action,
    Answer,
    HandshakeConfig,
    Phase,
    StartHandshake,
)

S = 1_000_000_000  # ns per s
MS = 1_000_000

CFG = HandshakeConfig(
    start_delay_s=1.0,
    service_wait_s=2.0,
    connect_settle_s=0.5,
    service_timeout_s=0.3,
    start_retry_s=0.1,
    loop=False,
    loop_pause_s=1.0,
)

YES, NO = Answer(True, "sweep started"), Answer(False, "sweep not started: no pose")


def _run(hs: StartHandshake, events):
    """Feed (time ns, connected, answer) events; return [(action, first_refusal), ...]."""
    out = []
    for now, connected, answer in events:
        step = hs.step(now, lambda c=connected: c, answer)
        out.append((step.action, step.first_refusal))
        if step.action in (Action.OPEN, Action.NEXT_PASS, Action.CALL_START):
            hs.called(now, sent=True)
    return out


def _started(cfg: HandshakeConfig = CFG) -> StartHandshake:
    """A handshake that has just called the start service for the first pass (at 2 s)."""
    hs = StartHandshake(cfg, now_ns=0)
    assert hs.step(2 * S, lambda: True).action is Action.ANNOUNCE_WAIT  # settle begins
    assert hs.step(3 * S, lambda: True).action is Action.OPEN
    hs.called(3 * S, sent=True)
    assert hs.phase is Phase.STARTING
    return hs


def test_from_params_picks_the_fields_by_name():
    params = SimpleNamespace(start_delay_s=4.0, loop=True, rows=128)
    cfg = HandshakeConfig.from_params(params)
    assert cfg.start_delay_s == 4.0 and cfg.loop and cfg.service_wait_s == 30.0


def test_the_graph_is_not_asked_before_the_start_delay():
    hs = StartHandshake(CFG, now_ns=5 * S)
    asked = []
    step = hs.step(5 * S + 999 * MS, lambda: asked.append(1) or True)
    assert step.action is Action.WAIT and asked == [] and hs.phase is Phase.PREPARING


@pytest.mark.parametrize(
    ("name", "events", "expected"),
    [
        (
            "connected and settled",
            [(1 * S, True, None), (1 * S + 400 * MS, True, None), (1 * S + 500 * MS, True, None)],
            [Action.ANNOUNCE_WAIT, Action.WAIT, Action.OPEN],
        ),
        (
            "a break restarts the settle time",
            [
                (1 * S, True, None),
                (1 * S + 400 * MS, False, None),
                (1 * S + 500 * MS, True, None),
                (1 * S + 900 * MS, True, None),
                (2 * S, True, None),
            ],
            [Action.ANNOUNCE_WAIT, Action.WAIT, Action.WAIT, Action.WAIT, Action.OPEN],
        ),
        (
            "never connected: service_wait_s runs out",
            [
                (1 * S, False, None),
                (2 * S, False, None),
                (3 * S - 1, False, None),
                (3 * S, False, None),
            ],
            [Action.ANNOUNCE_WAIT, Action.WAIT, Action.WAIT, Action.OPEN],
        ),
        (
            "connected at once with no settle time left to wait",
            [(3 * S, True, None)],
            [Action.OPEN],
        ),
    ],
)
def test_waiting_for_the_graph(name, events, expected):
    hs = StartHandshake(CFG, now_ns=0)
    actions = [a for a, _ in _run(hs, events)]
    assert actions == expected, name
    assert hs.phase is Phase.STARTING


def test_refusal_retry_accept():
    hs = _started()
    t = 3 * S
    events = [
        (t + 10 * MS, True, NO),  # refused: retry after start_retry_s
        (t + 50 * MS, True, None),  # not yet
        (t + 110 * MS, True, None),  # retry due: call again
        (t + 120 * MS, True, NO),  # refused again (no second log)
        (t + 220 * MS, True, None),  # call again
        (t + 230 * MS, True, YES),  # accepted
        (t + 240 * MS, True, None),
    ]
    assert _run(hs, events) == [
        (Action.RETRY_LATER, True),
        (Action.WAIT, False),
        (Action.CALL_START, False),
        (Action.RETRY_LATER, False),
        (Action.CALL_START, False),
        (Action.BEGIN, False),
        (Action.STREAM, False),
    ]
    assert hs.refusals == 2 and hs.phase is Phase.STREAMING


def test_gives_up_after_service_wait_s_of_refusals():
    hs = _started()
    t0 = 3 * S + 10 * MS
    assert hs.step(t0, lambda: True, NO).first_refusal
    now, steps = t0, []
    while hs.phase is not Phase.STREAMING:
        now += 100 * MS
        assert hs.step(now, lambda: True).action is Action.CALL_START
        hs.called(now, sent=True)
        steps.append(hs.step(now, lambda: True, NO))
    assert [s.action for s in steps[:-1]] == [Action.RETRY_LATER] * (len(steps) - 1)
    assert steps[-1].action is Action.GIVE_UP and not steps[-1].first_refusal
    assert now - t0 == 2 * S  # service_wait_s after the first refusal
    assert hs.refusals == len(steps) + 1


def test_gives_up_at_the_first_refusal_without_service_wait():
    cfg = HandshakeConfig(start_delay_s=0.0, service_wait_s=0.0)
    hs = StartHandshake(cfg, now_ns=0)
    assert hs.step(0, lambda: False).action is Action.OPEN
    hs.called(0, sent=True)
    step = hs.step(1, lambda: False, NO)
    assert step.action is Action.GIVE_UP and step.first_refusal and hs.phase is Phase.STREAMING


@pytest.mark.parametrize(
    ("sent", "dt_ns", "expected"),
    [
        (False, 0, Action.BEGIN),  # the service is absent: sweep without it
        (True, 300 * MS, Action.WAIT),  # waiting for the answer
        (True, 300 * MS + 1, Action.BEGIN),  # no answer within service_timeout_s
    ],
)
def test_absent_or_silent_start_service(sent, dt_ns, expected):
    hs = StartHandshake(CFG, now_ns=0)
    hs.called(5 * S, sent=sent)
    assert hs.step(5 * S + dt_ns, lambda: True).action is expected
    assert hs.refusals == 0


def test_answer_outside_starting_is_ignored():
    hs = _started()
    assert hs.step(3 * S + 1, lambda: True, YES).action is Action.BEGIN
    assert hs.step(3 * S + 2, lambda: True, YES).action is Action.STREAM


@pytest.mark.parametrize("loop", [False, True])
def test_pass_end_pauses_or_finishes(loop):
    hs = _started(replace(CFG, loop=loop))
    assert hs.step(3 * S + 10 * MS, lambda: True, NO).first_refusal
    assert hs.step(3 * S + 110 * MS, lambda: True).action is Action.CALL_START
    hs.called(3 * S + 110 * MS, sent=True)
    assert hs.step(3 * S + 120 * MS, lambda: True, YES).action is Action.BEGIN
    end = 10 * S
    phase = hs.pass_ended(end)
    if not loop:
        assert phase is Phase.DONE and hs.step(end + 5 * S, lambda: True).action is Action.WAIT
        return
    assert phase is Phase.PAUSING
    assert hs.step(end + 999 * MS, lambda: True).action is Action.WAIT
    assert hs.step(end + 1 * S, lambda: True).action is Action.NEXT_PASS
    hs.called(end + 1 * S, sent=True)
    # each pass logs its own first refusal
    assert hs.step(end + 1 * S + 1, lambda: True, NO).first_refusal
    assert hs.refusals == 2
