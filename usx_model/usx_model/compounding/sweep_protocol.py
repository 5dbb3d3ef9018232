"""The RecordSweep protocol: which sweep runs, who may start or end it, and how it ended.

ROS-free: ``us_compounding`` adapts it to a ROS 2 action (``usx_msgs/action/RecordSweep``)
and calls it from its goal, cancel and frame callbacks. States::

    idle --begin(goal)--> recording --stop / duration--> closing --closed()--> idle
                              |  \\--cancel / client lost / shutdown--> idle (discarded)
                              \\--begin(another goal)--> refused, the sweep runs on

A goal is refused, with a reason a person can act on, when a sweep is already running,
its id is empty, malformed or was used before, a level is unknown, its duration is out of
range, or the streams are not live yet. A cancelled or aborted sweep is discarded: the node
publishes nothing for it, so no completion follows. Nothing here reads a clock: times are
passed in (monotonic s).

The probe's motion is watched on the placed frames (:class:`ProbeMotion`): a frame spacing
above ``max_frame_spacing_mm`` leaves gaps in the compounded volume, and the feedback says
so with the speed that would not.
"""

from __future__ import annotations

import enum
import re
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

#: Levels a goal may ask for (the lumbar spine).
LEVELS = ("L1", "L2", "L3", "L4", "L5")
_SWEEP_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


class SweepState(enum.StrEnum):
    IDLE = "idle"
    RECORDING = "recording"
    CLOSING = "closing"


class Outcome(enum.StrEnum):
    """How a goal ended (the result's ``outcome``)."""

    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    ABORTED = "aborted"
    REFUSED = "refused"


@dataclass(frozen=True)
class SweepGoal:
    """What a client asked for.

    Attributes:
        sweep_id: unique per sweep; every message of the sweep carries it.
        levels: levels the sweep should cover (empty: all of :data:`LEVELS`).
        duration_s: planned acquisition time, s (0: until stopped).
    """

    sweep_id: str
    levels: tuple[str, ...] = ()
    duration_s: float = 0.0


@dataclass(frozen=True)
class Ended:
    """How the sweep ended: its goal, the outcome and a message for the result."""

    goal: SweepGoal
    outcome: Outcome
    message: str


class ProbeMotion:
    """Probe speed and frame spacing over the last placed frames.

    Args:
        max_frame_spacing_mm: the largest spacing between consecutive placed frames that
            leaves no gap in the volume (about a voxel).
        window: placed frames the median is taken over (one jittery stamp is no warning).
    """

    def __init__(self, max_frame_spacing_mm: float, window: int = 9) -> None:
        if max_frame_spacing_mm <= 0:
            raise ValueError(f"max_frame_spacing_mm must be > 0, got {max_frame_spacing_mm}")
        self.max_frame_spacing_mm = float(max_frame_spacing_mm)
        self._last: tuple[int, np.ndarray] | None = None
        self._steps: deque[tuple[float, float]] = deque(maxlen=window)  # (mm, s)
        self.too_fast_frames = 0  # placed frames whose median spacing was over the limit

    def placed(self, stamp_ns: int, origin_mm) -> None:
        """A placed frame: its stamp (ns) and image origin (base frame, mm)."""
        p = np.asarray(origin_mm, dtype=float)
        if self._last is not None:
            t0, p0 = self._last
            dt_s = (stamp_ns - t0) * 1e-9
            if dt_s > 0:
                self._steps.append((float(np.linalg.norm(p - p0)), dt_s))
        self._last = (int(stamp_ns), p)
        if self.frame_spacing_mm > self.max_frame_spacing_mm:
            self.too_fast_frames += 1

    @property
    def frame_spacing_mm(self) -> float:
        """Median distance between consecutive placed frames (0 before two frames)."""
        return float(np.median([d for d, _ in self._steps])) if self._steps else 0.0

    @property
    def speed_mm_s(self) -> float:
        """Median probe speed between consecutive placed frames, mm/s."""
        return float(np.median([d / t for d, t in self._steps])) if self._steps else 0.0

    def warning(self) -> str | None:
        """What to tell the operator when the probe moves too fast for the frame rate."""
        spacing = self.frame_spacing_mm
        if spacing <= self.max_frame_spacing_mm:
            return None
        speed = self.speed_mm_s
        limit = speed * self.max_frame_spacing_mm / spacing
        return (
            f"probe too fast for the frame rate: {spacing:.1f} mm between frames at "
            f"{speed:.0f} mm/s (at most {self.max_frame_spacing_mm:g} mm: slow down to "
            f"{limit:.0f} mm/s)"
        )


@dataclass
class _Running:
    goal: SweepGoal
    started_s: float
    motion: ProbeMotion
    drops: Counter = field(default_factory=Counter)
    placed: int = 0


class SweepProtocol:
    """State of the RecordSweep protocol.

    Args:
        max_duration_s: the longest ``duration_s`` a goal may ask for.
        max_frame_spacing_mm: see :class:`ProbeMotion`.
        remember_ids: how many finished sweep ids are kept to refuse their reuse.
    """

    def __init__(
        self,
        max_duration_s: float = 600.0,
        max_frame_spacing_mm: float = 2.0,
        remember_ids: int = 1000,
    ) -> None:
        ProbeMotion(max_frame_spacing_mm)  # validates
        self.max_duration_s = float(max_duration_s)
        self.max_frame_spacing_mm = float(max_frame_spacing_mm)
        self.state = SweepState.IDLE
        self._running: _Running | None = None
        self._used: deque[str] = deque(maxlen=remember_ids)
        self.refused = Counter()  # goals refused, by the first word of the reason

    # --- goals ----------------------------------------------------------------------
    @property
    def goal(self) -> SweepGoal | None:
        """The running sweep's goal (None when idle)."""
        return None if self._running is None else self._running.goal

    def check(self, goal: SweepGoal) -> str | None:
        """Why ``goal`` would be refused now, without the readiness of the streams."""
        if self._running is not None:
            return (
                f"sweep {self._running.goal.sweep_id!r} is {self.state}: cancel it or wait "
                f"for its result before sending {goal.sweep_id!r}"
            )
        if not _SWEEP_ID.fullmatch(goal.sweep_id):
            return f"invalid sweep_id {goal.sweep_id!r}: expected 1-64 letters, digits or '-_.:'"
        if goal.sweep_id in self._used:
            return f"sweep_id {goal.sweep_id!r} was used before: every sweep needs a new id"
        unknown = [lv for lv in goal.levels if lv not in LEVELS]
        if unknown:
            return f"unknown levels {unknown}: expected some of {list(LEVELS)}"
        if len(set(goal.levels)) != len(goal.levels):
            return f"levels {list(goal.levels)} repeat a level"
        if not 0.0 <= goal.duration_s <= self.max_duration_s:  # NaN fails it too
            return (
                f"duration_s {goal.duration_s}: expected 0 (until stopped) to "
                f"{self.max_duration_s:g} s"
            )
        return None

    def begin(self, goal: SweepGoal, now_s: float, not_ready: str | None = None) -> str | None:
        """Start ``goal``'s sweep; returns the refusal reason instead when it may not start.

        Args:
            not_ready: why the streams would lose the first frames (None: they would not).
        """
        reason = self.check(goal)
        if reason is None and not_ready is not None:
            reason = f"sweep {goal.sweep_id!r} not started: {not_ready}"
        if reason is not None:
            self.refused[reason.split(" ", 1)[0]] += 1
            return reason
        self._used.append(goal.sweep_id)
        self._running = _Running(goal, now_s, ProbeMotion(self.max_frame_spacing_mm))
        self.state = SweepState.RECORDING
        return None

    # --- the running sweep ----------------------------------------------------------
    def stop_due(self, now_s: float) -> bool:
        """A recording sweep reached its planned duration."""
        r = self._running
        if r is None or self.state is not SweepState.RECORDING:
            return False
        return r.goal.duration_s > 0 and now_s - r.started_s >= r.goal.duration_s

    def stopping(self) -> None:
        """The recording sweep was stopped (its duration, or the stop service); its frames
        are settling."""
        self._require(SweepState.RECORDING, "stop")
        self.state = SweepState.CLOSING

    def closed(self, message: str) -> Ended:
        """The stopped sweep closed and its results went out."""
        self._require(SweepState.CLOSING, "close")
        return self._end(Outcome.SUCCEEDED, message)

    def cancel(self) -> Ended | None:
        """Cancel the running sweep (discarded); None when there is none."""
        if self._running is None:
            return None
        r = self._running
        return self._end(
            Outcome.CANCELLED,
            f"sweep {r.goal.sweep_id!r} cancelled: {r.placed} placed frames discarded",
        )

    def abort(self, reason: str) -> Ended | None:
        """End the running sweep unpublished (client lost, node deactivated); None if none."""
        if self._running is None:
            return None
        return self._end(
            Outcome.ABORTED, f"sweep {self._running.goal.sweep_id!r} aborted: {reason}"
        )

    # --- frames -----------------------------------------------------------------------
    def frame(self, report) -> None:
        """One settled frame of the running sweep (a ``FrameReport``)."""
        r = self._running
        if r is None:
            return
        if report.placed:
            r.placed += 1
            if report.origin_mm is not None:
                r.motion.placed(report.stamp_ns, report.origin_mm)
        else:
            r.drops[report.reason or "dropped"] += 1

    def feedback(self, now_s: float) -> dict | None:
        """The running sweep's progress (None when idle): what the action's feedback says."""
        r = self._running
        if r is None:
            return None
        warning = r.motion.warning()
        return {
            "sweep_id": r.goal.sweep_id,
            "state": str(self.state),
            "elapsed_s": now_s - r.started_s,
            "frames_placed": r.placed,
            "drops": dict(sorted(r.drops.items())),
            "probe_speed_mm_s": r.motion.speed_mm_s,
            "frame_spacing_mm": r.motion.frame_spacing_mm,
            "warnings": [] if warning is None else [warning],
        }

    # --- internals ----------------------------------------------------------------------
    def _require(self, state: SweepState, what: str) -> None:
        if self.state is not state:
            raise RuntimeError(f"cannot {what} a sweep that is {self.state}")

    def _end(self, outcome: Outcome, message: str) -> Ended:
        ended = Ended(self._running.goal, outcome, message)
        self._running = None
        self.state = SweepState.IDLE
        return ended
