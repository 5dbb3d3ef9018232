"""The sweep protocol of the compounding node: start, stop, reset, frames and poses.

What ``us_compounding``'s services and callbacks do to its state, ROS-free. One
:class:`~usx_model.compounding.bone_sweep.BoneSweep` at a time takes the frames of the
active sweep. A stopped sweep closes once the frames acquired before the stop have arrived
and found their poses: frames stamped up to the stop (estimated in the image clock, plus
the pose tolerance) are still taken for ``stop_settle_s``, and held frames wait for their
poses while poses keep arriving (``stop_grace_s``, at most ``stop_timeout_s``), so a
recorded sweep replays to the same frames. Frames that arrive with no sweep to take them
are counted.

Two clocks, both passed in (nothing here reads a clock): monotonic seconds (``now_s``)
for the waits, and the node's clock in ns (``clock_ns``) for the stop estimate, which is
compared with image stamps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from usx_model.compounding.bone_sweep import BoneSweep, FrameReport
from usx_model.compounding.frame_loss import FrameLoss, count_frame_loss
from usx_model.tracking.interpolation import PoseBuffer
from usx_model.tracking.stamps import StampGuard


@dataclass(frozen=True)
class Closing:
    """A stopped sweep not yet closed: when the stop came (monotonic s) and the image-clock
    stamp (ns) up to which late frames still belong to it (None: no frame yet)."""

    since: float
    last_stamp_ns: int | None


@dataclass(frozen=True)
class SessionTiming:
    """How a stopped sweep closes (parameters of the same names), s."""

    stop_settle_s: float = 0.05
    stop_grace_s: float = 1.0
    stop_timeout_s: float = 10.0
    pose_tolerance_s: float = 0.05
    max_stamp_step_s: float = 5.0
    stamp_recover_count: int = 5


class StampRejected(ValueError):
    """A frame's stamp was refused (``reason``: ``tracking.stamps`` OUT_OF_ORDER or
    STAMP_JUMP); the image itself may be fine."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SweepSession:
    """The sweep protocol state around the current :class:`BoneSweep`.

    Args:
        new_sweep: makes the next sweep, given the pose buffer to carry over (None for the
            first sweep: make a fresh one). Called once here, so an invalid volume (memory
            budget) raises ``ValueError`` at construction, not at the first frame.
        timing: closing waits.
        id_prefix: the id of a sweep started without one is this prefix and a count
            (``"<prefix>1"``, ...): make it unique to the process (a node name and its start
            time), so that two sweeps never share an id.

    Attributes:
        sweep_id: the current (or last) sweep's id; every message of the sweep carries it
            ('' before the first sweep).
    """

    def __init__(
        self,
        new_sweep: Callable[[PoseBuffer | None], BoneSweep],
        timing: SessionTiming,
        id_prefix: str = "sweep-",
    ) -> None:
        self._new_sweep = new_sweep
        self.timing = timing
        self.id_prefix = id_prefix
        self.sweep_id = ""
        self._unnamed = 0  # sweeps started without an id
        self.sweep = new_sweep(None)
        self.active = False
        self.closing: Closing | None = None
        self.sweeps_completed = 0
        self.last_image_ns = -1
        self._stamps = self._new_guard()
        self.frames_after_stop = 0  # this sweep's frames that arrived after its stop
        self.frames_outside_sweeps = 0  # frames that arrived with no sweep to take them
        self.frames_rejected = 0  # this sweep's frames refused at the input
        self.stopped_at_ns = -1  # the node's clock at the last stop (ns; -1: none yet)
        self.last_image_at_ns = 0  # node clock when that frame arrived
        self.last_pose_at = -math.inf  # monotonic s

    def _new_guard(self) -> StampGuard:
        t = self.timing
        return StampGuard(int(t.max_stamp_step_s * 1e9), t.stamp_recover_count)

    def _renew(self) -> None:
        # The pose stream runs on between sweeps; a start that arrives after the poses
        # around the first frame must not lose them.
        self.sweep = self._new_sweep(self.sweep.sweep.poses.restarted())

    # --- sweep control ---------------------------------------------------------------
    def start(self, sweep_id: str = "") -> str:
        """Begin a new sweep (the message the start service answers).

        Args:
            sweep_id: the sweep's id (a RecordSweep goal's, which the protocol has checked
                to be new); '' gives it the next ``id_prefix`` id.

        A stopped sweep still closing must be closed (:meth:`close`) first.
        """
        if self.active:
            return "sweep already active"
        if self.closing is not None:
            raise RuntimeError("close the stopped sweep before starting the next one")
        if not sweep_id:
            self._unnamed += 1
            sweep_id = f"{self.id_prefix}{self._unnamed}"
        self.sweep_id = sweep_id
        self._renew()
        self.last_image_ns = -1
        self._stamps = self._new_guard()  # each sweep's first frame sets its reference
        self.frames_after_stop = 0
        self.frames_rejected = 0
        self.active = True
        return f"sweep {sweep_id!r} started"

    def stop(self, now_s: float, clock_ns: int) -> str:
        """End the sweep; it closes once the frames acquired before the stop are settled.

        Frames stamped before the stop that arrive within ``stop_settle_s`` are still
        taken, and held frames wait for their poses while poses keep arriving (a tracker
        that lags under load catches up), so a sweep and its replay place the same
        frames. The stop time in the image clock is estimated from the latest frame:
        its stamp plus the time since it arrived.

        Args:
            now_s: monotonic time of the stop, s.
            clock_ns: the node's clock at the stop, ns.
        """
        if not self.active:
            return "no active sweep"
        self.active = False
        self.stopped_at_ns = int(clock_ns)
        last = self.last_image_ns
        self.closing = Closing(
            since=now_s,
            last_stamp_ns=None if last < 0 else last + (clock_ns - self.last_image_at_ns),
        )
        return f"sweep stopping: {self.sweep.frames_placed} frames placed so far"

    def reset(self) -> str:
        """Discard the sweep, active or closing, unpublished."""
        self._renew()
        self.frames_rejected = 0
        self.active = False
        self.closing = None
        return "sweep discarded"

    def close_due(self, now_s: float) -> bool:
        """A stopped sweep has settled: no frame before the stop can still arrive, and no
        held frame can still find its pose (poses stopped, or ``stop_timeout_s`` passed)."""
        closing, t = self.closing, self.timing
        if closing is None:
            return False
        settling = now_s - closing.since < t.stop_settle_s
        poses_flowing = now_s - max(closing.since, self.last_pose_at) < t.stop_grace_s
        held = self.sweep.pending and poses_flowing and now_s - closing.since < t.stop_timeout_s
        return not (settling or held)

    def close(self) -> list[FrameReport]:
        """Close the stopped sweep: the held frames' fates (dropped, or placed at last)."""
        self.closing = None
        reports = self.sweep.flush()
        self.sweeps_completed += 1
        return reports

    # --- streams ----------------------------------------------------------------------
    def add_pose(
        self, stamp_ns: int, T_base_probe: np.ndarray, now_s: Callable[[], float]
    ) -> tuple[str | None, list[FrameReport]]:
        """A probe pose (base frame, mm): (rejection reason or None, frames it released).

        Args:
            now_s: the monotonic clock, read once the pose is in (the frames it released
                are placed first); an accepted pose keeps a stopped sweep open.
        """
        reason, released = self.sweep.add_pose(stamp_ns, T_base_probe)
        if reason is None:
            self.last_pose_at = now_s()
        return reason, released

    def takes_frame(self, stamp_ns: int) -> bool:
        """Whether a frame stamped ``stamp_ns`` belongs to a sweep (else it is counted)."""
        if self.active or self._late_frame(stamp_ns):
            return True
        self.frames_outside_sweeps += 1
        return False

    def add_frame(
        self, stamp_ns: int, image: np.ndarray, clock_ns: Callable[[], int]
    ) -> list[FrameReport]:
        """A frame that :meth:`takes_frame` admitted: the frames settled by it.

        Args:
            clock_ns: the node's clock, read once the frame is in (the stop estimate
                counts from then).

        Raises:
            StampRejected: the stamp is not after the previous accepted frame's, or too far
                after it (not adopted: one future-stamped image cannot block a sweep).
            ValueError: the image is invalid.
        """
        last = self.last_image_ns
        reason = self._stamps.check(stamp_ns)
        if reason is not None:
            self.frames_rejected += 1
            raise StampRejected(reason, f"frame stamp {stamp_ns} ns against the last {last} ns")
        try:
            reports = self.sweep.add_frame(stamp_ns, image)
        except ValueError:
            self.frames_rejected += 1
            raise
        self.last_image_ns = stamp_ns
        self.last_image_at_ns = clock_ns()
        if not self.active:
            self.frames_after_stop += 1
        return reports

    def reject_frame(self) -> None:
        """Count a frame of this sweep refused before :meth:`add_frame` (e.g. a message
        that did not convert to an image)."""
        self.frames_rejected += 1

    def frame_loss(self) -> FrameLoss:
        """The current (or last closed) sweep's :class:`FrameLoss`."""
        sweep = self.sweep
        return count_frame_loss(
            sweep.received_stamps_ns,
            sweep.frames_placed,
            sweep.dropped["no_contact"],
            self.frames_rejected,
        )

    def pose_age_s(self, now_s: float) -> float:
        """Seconds since the last accepted pose (inf: none yet)."""
        return now_s - self.last_pose_at

    def _late_frame(self, stamp_ns: int) -> bool:
        """A frame acquired before the stop that arrived after it (still settling)."""
        closing = self.closing
        if closing is None or closing.last_stamp_ns is None:
            return False
        # The stop estimate jitters with transport latency: allow the pose tolerance
        # (50 ms by default, 1.5 frame periods at 30 Hz).
        slack_ns = int(self.timing.pose_tolerance_s * 1e9)
        return stamp_ns <= closing.last_stamp_ns + slack_ns
