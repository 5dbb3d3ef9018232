"""The phantom's sweep-start handshake with us_compounding, as a plain state machine.

Before the first pass the phantom waits ``start_delay_s``, then until the graph is
connected (the start service is up, the streams' subscribers have matched, every
``wait_for_links`` topic has both ends) for ``connect_settle_s`` without a break, at most
``service_wait_s``. Each pass is then asked for with a RecordSweep goal (the "start call"
below): it begins when the goal is recording (its first feedback), the action is absent,
or no answer comes within ``service_timeout_s``; while goals are refused (the pose stream
is not live yet: the first frames would be lost) the phantom sends a new one every
``start_retry_s`` until ``service_wait_s`` has passed since the first refusal, then sweeps
without it. With ``loop`` the next pass is
asked for ``loop_pause_s`` after the last one ended.

ROS-free and clock-free: every method takes the time (integer ns on the node's clock);
the node makes the service calls, queries the graph and publishes what :class:`Step`
says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import Enum
from typing import NamedTuple


class Phase(Enum):
    PREPARING = "preparing"  # before the first pass: start delay, graph connection
    STARTING = "starting"  # the start service was called; its answer is awaited
    RETRYING = "retrying"  # the start service refused; ask again at the retry time
    STREAMING = "streaming"  # a pass is under way
    PAUSING = "pausing"  # between passes (loop)
    DONE = "done"  # the last pass ended


class Action(Enum):
    WAIT = "wait"  # nothing to do now
    ANNOUNCE_WAIT = "announce_wait"  # the wait for the graph began: say what it waits for
    OPEN = "open"  # graph ready: publish the X-ray and ground truth, ask for the first pass
    NEXT_PASS = "next_pass"  # the loop pause is over: ask for the next pass
    CALL_START = "call_start"  # ask the start service again (after a refusal)
    BEGIN = "begin"  # begin the pass (accepted, service absent or no answer in time)
    RETRY_LATER = "retry_later"  # refused: ask again after start_retry_s
    GIVE_UP = "give_up"  # still refused after service_wait_s: say so, begin the pass
    STREAM = "stream"  # mid-pass: publish what is due


@dataclass(frozen=True)
class Step:
    """What the node does now; ``first_refusal``: the first refusal of this pass (log it)."""

    action: Action
    first_refusal: bool = False


class Answer(NamedTuple):
    """The start service's answer (std_srvs/Trigger response)."""

    success: bool
    message: str = ""


@dataclass(frozen=True)
class HandshakeConfig:
    """Timing of the handshake, s; field names are the phantom node's parameter names."""

    start_delay_s: float = 1.0
    service_wait_s: float = 30.0
    connect_settle_s: float = 0.5
    service_timeout_s: float = 2.0
    start_retry_s: float = 0.1
    loop: bool = False
    loop_pause_s: float = 1.0

    @classmethod
    def from_params(cls, params: object) -> HandshakeConfig:
        """The fields read by name from a parameter object (other attributes ignored)."""
        return cls(
            **{f.name: getattr(params, f.name) for f in fields(cls) if hasattr(params, f.name)}
        )


class StartHandshake:
    """When the phantom may begin each pass.

    Args:
        cfg: timing.
        now_ns: the node's clock at construction (the start delay counts from here).
    """

    def __init__(self, cfg: HandshakeConfig, now_ns: int) -> None:
        self.cfg = cfg
        self.phase = Phase.PREPARING
        self.start_after_ns = now_ns + int(cfg.start_delay_s * 1e9)
        self.refusals = 0  # all passes together
        self._wait_announced = False
        self._connected_since_ns: int | None = None
        self._refused_since_ns: int | None = None  # this pass's first refusal
        self._call_ns = 0
        self._call_sent = False
        self._retry_ns = 0
        self._resume_ns = 0

    def step(
        self, now_ns: int, connected: Callable[[], bool], answer: Answer | None = None
    ) -> Step:
        """Advance to ``now_ns``.

        Args:
            now_ns: the node's clock.
            connected: whether the graph is connected now (asked only while waiting for it).
            answer: the answer to the last start call if it has come, else None.
        """
        phase = self.phase
        if phase is Phase.PREPARING:
            if now_ns < self.start_after_ns:
                return Step(Action.WAIT)
            if self._awaiting_graph(now_ns, connected()):
                if not self._wait_announced:
                    self._wait_announced = True
                    return Step(Action.ANNOUNCE_WAIT)
                return Step(Action.WAIT)
            return Step(Action.OPEN)
        if phase is Phase.STARTING:
            if answer is not None:
                return self._on_answer(now_ns, answer)
            timed_out = now_ns - self._call_ns > self.cfg.service_timeout_s * 1e9
            if not self._call_sent or timed_out:
                return self._begin()
        elif phase is Phase.RETRYING and now_ns >= self._retry_ns:
            return Step(Action.CALL_START)
        elif phase is Phase.STREAMING:
            return Step(Action.STREAM)
        elif phase is Phase.PAUSING and now_ns >= self._resume_ns:
            return Step(Action.NEXT_PASS)
        return Step(Action.WAIT)

    def called(self, now_ns: int, sent: bool) -> None:
        """The start service was called at ``now_ns`` (``sent``: False when it is absent)."""
        self._call_ns, self._call_sent = now_ns, sent
        self.phase = Phase.STARTING

    def pass_ended(self, now_ns: int) -> Phase:
        """The pass's last sample went out: pause for the next pass (loop) or finish."""
        if self.cfg.loop:
            self._resume_ns = now_ns + int(self.cfg.loop_pause_s * 1e9)
            self.phase = Phase.PAUSING
        else:
            self.phase = Phase.DONE
        return self.phase

    def _awaiting_graph(self, now_ns: int, connected: bool) -> bool:
        """True while the graph is not connected and ``service_wait_s`` has not run out.

        Connected counts once it has held for ``connect_settle_s`` without a break. Without
        this, a compounding node that came up after the start delay missed the whole
        sweep, and a probe tracker matched a few ms late lost the first joint state or
        pose, so the first frame had no pose.
        """
        if connected:
            if self._connected_since_ns is None:
                self._connected_since_ns = now_ns
            if now_ns - self._connected_since_ns >= self.cfg.connect_settle_s * 1e9:
                return False
        else:
            self._connected_since_ns = None
        waited_s = (now_ns - self.start_after_ns) / 1e9
        return waited_s < self.cfg.service_wait_s

    def _on_answer(self, now_ns: int, answer: Answer) -> Step:
        """Begin the pass, or ask again while the start service refuses (its streams are
        not live yet: the first frames would be lost) and ``service_wait_s`` lasts."""
        if answer.success:
            return self._begin()
        self.refusals += 1
        first = self._refused_since_ns is None
        if first:
            self._refused_since_ns = now_ns
        if now_ns - self._refused_since_ns < self.cfg.service_wait_s * 1e9:
            self._retry_ns = now_ns + int(self.cfg.start_retry_s * 1e9)
            self.phase = Phase.RETRYING
            return Step(Action.RETRY_LATER, first)
        self._begin()
        return Step(Action.GIVE_UP, first)

    def _begin(self) -> Step:
        self._refused_since_ns = None
        self.phase = Phase.STREAMING
        return Step(Action.BEGIN)
