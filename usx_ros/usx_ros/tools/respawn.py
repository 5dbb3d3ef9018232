"""When the launcher restarts a node that exited, and when it gives up (ROS-free).

Every exit of a node while the graph runs is reported, clean (code 0) or not: a node has
no reason to end on its own. A node is restarted after ``delay_s`` unless

- it exited with code 2 within ``startup_s`` of its start: it refused its parameters,
  and a restart would refuse them again;
- it has already been restarted ``max_restarts`` times within the last ``window_s``: it
  fails for a reason a restart does not fix.

In both cases the launcher stops the graph with that node's exit code.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

#: The exit code of a node that refused its parameters (``nodes.common.run_node``).
PARAMETER_ERROR = 2


@dataclass(frozen=True)
class Verdict:
    """What to do about one exit: ``restart`` (after ``delay_s``) or not, and why."""

    restart: bool
    delay_s: float
    message: str


@dataclass
class RespawnPolicy:
    """Restart bookkeeping for the nodes of one graph (times in monotonic seconds)."""

    delay_s: float = 1.0
    max_restarts: int = 5
    window_s: float = 60.0
    startup_s: float = 10.0
    _restarts: dict[str, deque] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.delay_s < 0 or self.max_restarts < 0 or self.window_s <= 0 or self.startup_s < 0:
            raise ValueError(
                "expected delay_s >= 0, max_restarts >= 0, window_s > 0, startup_s >= 0, got "
                f"{self.delay_s}, {self.max_restarts}, {self.window_s}, {self.startup_s}"
            )

    def on_exit(self, node: str, code: int, started_s: float, now_s: float) -> Verdict:
        """The verdict on ``node`` exiting with ``code`` at ``now_s`` (started at
        ``started_s``); a restart is counted against the node's budget."""
        up_s = now_s - started_s
        what = f"node {node} exited with code {code} after {up_s:.1f} s"
        if code == PARAMETER_ERROR and up_s < self.startup_s:
            return Verdict(False, 0.0, f"{what}: invalid parameters, not restarted")
        recent = self._restarts.setdefault(node, deque())
        while recent and now_s - recent[0] > self.window_s:
            recent.popleft()
        if len(recent) >= self.max_restarts:
            return Verdict(
                False,
                0.0,
                f"{what}: restarted {len(recent)} times in {self.window_s:g} s, giving up",
            )
        recent.append(now_s)
        return Verdict(
            True,
            self.delay_s,
            f"{what}; restarting in {self.delay_s:g} s ({len(recent)}/{self.max_restarts})",
        )
