"""When a recording sweep sends its bone points so far for the live completion.

The points go out once a level is covered: at once when a level has just become covered
(its first completion is awaited), else at most every ``period_s`` while the sweep grows.
A sweep whose points went out and that is then discarded must be declared void, so the
schedule remembers the sweep that is open until it closes or is discarded.
"""

from __future__ import annotations

import math


class LivePointsSchedule:
    """The live-points decisions of one compounding node, sweep after sweep.

    Args:
        period_s: least time between two sends of the same sweep without a newly covered
            level, s (0: never send).
    """

    def __init__(self, period_s: float) -> None:
        if not (math.isfinite(period_s) and period_s >= 0):
            raise ValueError(f"period_s: expected >= 0 s, got {period_s}")
        self.period_s = float(period_s)
        self._sweep_id = ""
        self._sequence = -1
        self._sent_s = -math.inf
        self._covered: frozenset[int] = frozenset()
        #: the sweep whose points went out and that has neither closed nor been discarded
        self.open_sweep = ""

    def due(self, sweep_id: str, covered: dict[int, bool], now_s: float) -> int | None:
        """The sequence number of a send due now (0, 1, ... within the sweep), or None.

        Args:
            sweep_id: the recording sweep.
            covered: level -> its coverage criterion is met.
            now_s: the caller's monotonic clock, s.
        """
        done = frozenset(lv for lv, d in covered.items() if d)
        if self.period_s <= 0 or not done:
            return None
        same = sweep_id == self._sweep_id
        if same and not (done - self._covered) and now_s - self._sent_s < self.period_s:
            return None
        self._sequence = self._sequence + 1 if same else 0
        self._sweep_id, self._sent_s, self._covered = sweep_id, now_s, done
        self.open_sweep = sweep_id
        return self._sequence

    def closing(self, sweep_id: str) -> int:
        """The sweep stopped and its closing points go out: their sequence number (after
        the sweep's live sends, 0 when there were none)."""
        seq = self._sequence + 1 if sweep_id == self._sweep_id else 0
        self._sweep_id, self._sequence = sweep_id, seq
        return seq

    def closed(self) -> None:
        """The sweep closed: its final bone points follow, nothing to declare void."""
        self.open_sweep = ""

    def discarded(self) -> tuple[str, int] | None:
        """The sweep was discarded: (its id, the void notice's sequence) if its points went
        out, else None."""
        if not self.open_sweep:
            return None
        out = (self.open_sweep, self._sequence + 1)
        self.open_sweep = ""
        return out
