"""Which message stamps a stream may adopt: monotonic, bounded steps, self-healing.

A tracking stream (joint states, flange poses, images) must be strictly increasing in
time, but one wrong stamp must not decide what follows. Accepting every stamp later than
the last one lets a single message stamped an hour ahead make every later, correct
message "out of order" for an hour. :class:`StampGuard` therefore accepts a stamp only a
bounded step after the last accepted one; anything else is rejected with a reason and is
not adopted. If the source itself has moved (a clock step, a restarted robot controller,
a looped bag), its stamps are consistent among themselves but not with the old reference:
after ``recover_count`` such stamps in a row, each a bounded step after the previous, the
guard re-anchors on them (``rebased`` counts it). No wall clock is involved, so recorded
bags replay with their original stamps.
"""

from __future__ import annotations

#: Reasons :meth:`StampGuard.check` rejects a stamp with.
OUT_OF_ORDER = "out_of_order"
STAMP_JUMP = "stamp_jump"


class StampGuard:
    """Monotonic stamp filter with a bounded forward step and self-recovery.

    Args:
        max_step_ns: largest accepted step after the last accepted stamp (> 0).
        recover_count: consecutive mutually consistent rejected stamps after which the
            guard re-anchors on them (>= 2).
    """

    def __init__(self, max_step_ns: int, recover_count: int = 5) -> None:
        if int(max_step_ns) <= 0:
            raise ValueError(f"max_step_ns: expected > 0, got {max_step_ns}")
        if int(recover_count) < 2:
            raise ValueError(f"recover_count: expected >= 2, got {recover_count}")
        self.max_step_ns = int(max_step_ns)
        self.recover_count = int(recover_count)
        self.last_ns: int | None = None
        self.rebased = 0
        self._run: list[int] = []

    def _follows(self, ns: int, ref: int) -> bool:
        return ref < ns <= ref + self.max_step_ns

    def check(self, ns: int) -> str | None:
        """None if ``ns`` (int, ns) is accepted (and becomes the reference), else the reason."""
        ns = int(ns)
        if self.last_ns is None or self._follows(ns, self.last_ns):
            self.last_ns = ns
            self._run.clear()
            return None
        reason = OUT_OF_ORDER if ns <= self.last_ns else STAMP_JUMP
        if self._run and self._follows(ns, self._run[-1]):
            self._run.append(ns)
        else:
            self._run = [ns]
        if len(self._run) >= self.recover_count:
            self.last_ns = ns
            self._run.clear()
            self.rebased += 1
            return None
        return reason
