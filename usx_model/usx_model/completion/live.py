"""The spine completed while a sweep records: which levels to complete when, and the
growing result.

A level is completed as soon as its coverage criterion is met (``levels.coverage``) and
again, at most every ``min_period_s``, while its coverage keeps growing by at least
``min_gain`` or its bone points by ``min_growth``: a serpentine's first pass
already covers most of a level's band, but the network needs the later passes' points too
(the demo's first-pass completions were 4 mm off, the gate calling them low confidence);
the other levels keep their latest completion. The sweep's final
completion (all levels from the final, breathing-corrected bone points) replaces the
live one: :meth:`LiveSpine.close` ends it, and nothing of that sweep is completed live
afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from usx_model.completion.spine import LevelCompletion, SpineCompletionResult


@dataclass(frozen=True)
class LivePolicy:
    """When a live completion of a level is due.

    Attributes:
        min_period_s: least time between two completions of the same level, s.
        min_gain: least growth of a completed level's coverage (fraction, 0..1) that
            makes it due again.
        min_growth: least relative growth of a level's bone points since its last
            completion that makes it due again (0.3: 30 % more points).
        max_levels: most levels completed at once (the longest-waiting first): one live
            step stays short, so a sweep's final completion never waits long behind it.
    """

    min_period_s: float = 1.0
    min_gain: float = 0.1
    min_growth: float = 0.3
    max_levels: int = 2

    def __post_init__(self) -> None:
        if not (np.isfinite(self.min_period_s) and self.min_period_s >= 0):
            raise ValueError(f"min_period_s: expected >= 0 s, got {self.min_period_s}")
        if not (0.0 <= self.min_gain <= 1.0):
            raise ValueError(f"min_gain: expected a fraction in 0..1, got {self.min_gain}")
        if not (np.isfinite(self.min_growth) and self.min_growth > 0):
            raise ValueError(f"min_growth: expected > 0, got {self.min_growth}")
        if int(self.max_levels) != self.max_levels or self.max_levels < 1:
            raise ValueError(f"max_levels: expected an integer >= 1, got {self.max_levels}")


@dataclass
class _Done:
    at_s: float
    coverage: float
    n_points: int


@dataclass
class LiveSpine:
    """The live completion of one sweep.

    Args:
        sweep_id: the sweep's id (a message of another sweep starts a new LiveSpine).
        policy: when a level is due.
    """

    sweep_id: str
    policy: LivePolicy = field(default_factory=LivePolicy)
    closed: bool = False
    covered_at_s: dict[int, float] = field(default_factory=dict)
    _done: dict[int, _Done] = field(default_factory=dict)
    _levels: dict[int, LevelCompletion] = field(default_factory=dict)
    _latest: SpineCompletionResult | None = None

    def due(
        self,
        coverage: dict[int, float],
        covered: dict[int, bool],
        now_s: float,
        points: dict[int, int] | None = None,
    ) -> tuple:
        """The levels to complete now (at most ``max_levels``: never completed first, then
        the longest since its last completion), in level order.

        Args:
            coverage: level -> coverage fraction of the sweep so far.
            covered: level -> its coverage criterion is met.
            now_s: the caller's monotonic clock, s.
            points: level -> its bone points so far (missing: no growth rule).
        """
        points = points or {}
        if self.closed:
            return ()
        out = []
        for lv in sorted(coverage):
            if not covered.get(lv, False):
                continue
            self.covered_at_s.setdefault(lv, now_s)
            done = self._done.get(lv)
            if done is None or (
                now_s - done.at_s >= self.policy.min_period_s
                and (
                    coverage[lv] - done.coverage >= self.policy.min_gain
                    or 0 < (1.0 + self.policy.min_growth) * done.n_points <= points.get(lv, 0)
                )
            ):
                out.append(lv)
        # never completed first, then the longest-waiting; ties in level order
        out.sort(key=lambda lv: (lv in self._done, self._done[lv].at_s if lv in self._done else 0))
        return tuple(sorted(out[: int(self.policy.max_levels)]))

    def update(
        self,
        result: SpineCompletionResult,
        coverage: dict[int, float],
        now_s: float,
        points: dict[int, int] | None = None,
    ) -> SpineCompletionResult:
        """Take a completion of some levels; the spine so far (every level completed live,
        the latest completion of each, in level order).

        A level the completion could not produce (status ``insufficient_input``) keeps an
        earlier completion if it had one.
        """
        if self.closed:
            raise ValueError(f"sweep {self.sweep_id!r}: its live completion is closed")
        for lc in result.levels:
            if lc.status == "insufficient_input" and lc.level in self._levels:
                continue
            self._levels[lc.level] = lc
            n = int((points or {}).get(lc.level, 0))
            self._done[lc.level] = _Done(now_s, float(coverage.get(lc.level, 0.0)), n)
        self._latest = SpineCompletionResult(
            [self._levels[lv] for lv in sorted(self._levels)],
            result.R_base_lps,
            result.points_mm,
            result.point_level,
            result.xray_points_mm,
            result.timings_s,
        )
        return self._latest

    @property
    def completed_levels(self) -> tuple[int, ...]:
        """The levels completed live so far."""
        return tuple(sorted(self._levels))

    def close(self) -> None:
        """The sweep's final completion is out: no more live completions of it."""
        self.closed = True
