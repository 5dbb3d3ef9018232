"""Counting and rate-limited reporting of dropped or invalid input.

A node never dies on one bad message: it calls ``InputHealth.reject(reason, detail)``,
which counts the message under ``reason`` and logs at most once per ``period_s`` per
reason, then the callback returns and the node carries on.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable


class InputHealth:
    """Per-reason counters of rejected input with throttled warnings.

    Args:
        logger: an rclpy logger (``node.get_logger()``).
        period_s: shortest interval between two warnings of the same reason.
    """

    def __init__(self, logger, period_s: float = 5.0) -> None:
        self._logger = logger
        self._period_s = period_s
        self.counts: Counter[str] = Counter()
        self.accepted = 0
        #: the latest detail of each reason (what a status or a test can show)
        self.last_detail: dict[str, str] = {}
        self._last_log: dict[str, float] = {}

    def accept(self) -> None:
        self.accepted += 1

    def reject(self, reason: str, detail: str) -> None:
        """Count one rejected message and log (throttled) why."""
        self.counts[reason] += 1
        self.last_detail[reason] = detail
        now = time.monotonic()
        # Throttled per reason (rclpy's own throttle is per call site, shared by all reasons).
        if now - self._last_log.get(reason, -float("inf")) >= self._period_s:
            self._last_log[reason] = now
            self._logger.warning(
                f"dropped input ({reason}, {self.counts[reason]} so far): {detail}"
            )

    @property
    def dropped(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> dict[str, int]:
        return {"accepted": self.accepted, **dict(self.counts)}


def publish_status(
    node,
    health: InputHealth,
    state: Callable[[], dict] | None = None,
    period_s: float = 1.0,
):
    """Publish the node's counters on ``~/status`` (std_msgs/String, one JSON object) and
    on ``/diagnostics`` (``usx_ros.diagnostics.NodeDiagnostics``).

    ``~/status``: every ``period_s`` while something changed since the last one:
    ``accepted``, ``rejected`` (count by reason) and the keys of ``state()``. Reliable,
    transient-local, so a monitor that connects late gets the latest. Returns the
    publisher.
    """
    from std_msgs.msg import String

    from usx_ros.diagnostics import NodeDiagnostics
    from usx_ros.qos import RESULT_QOS

    node.diagnostics = NodeDiagnostics(node, health, state, period_s=period_s)

    pub = node.create_publisher(String, "~/status", RESULT_QOS)
    last: list[str] = [""]

    def tick() -> None:
        text = json.dumps(
            {"accepted": health.accepted, "rejected": dict(health.counts)}
            | (state() if state else {}),
            sort_keys=True,
        )
        if text != last[0]:
            last[0] = text
            pub.publish(String(data=text))

    node.create_timer(period_s, tick)
    tick()
    return pub


def too_many_points(health: InputHealth, cloud, what: str, max_points: int) -> bool:
    """Reject (count) a PointCloud2 over ``max_points`` before any work on it."""
    n = int(cloud.width) * int(cloud.height)
    if n > max_points:
        health.reject("too_many_points", f"{what}: {n} points (max_points {max_points})")
        return True
    return False


#: Fewest bone points a cloud must hold to be used.
MIN_BONE_POINTS = 10


def bone_points_or_reject(
    health: InputHealth,
    cloud,
    frame_id: str,
    base_frame: str,
    what: str,
    reason: str,
    max_points: int | None = None,
):
    """A bone-point PointCloud2's points in mm (base frame), or None once counted why not.

    Rejected (counted, the callback carries on): another frame than ``base_frame``
    (``wrong_frame``), more than ``max_points`` points (``too_many_points``, before any
    decoding), a malformed cloud or fewer than :data:`MIN_BONE_POINTS` (``reason``).

    Args:
        cloud: sensor_msgs/PointCloud2 with x, y, z in metres.
        frame_id: the frame the message states (its own header's or its wrapper's).
        what: names the input in the log.
    """
    from usx_ros.conversions import xyz_from_cloud_mm

    if frame_id != base_frame:
        health.reject("wrong_frame", f"{what} in {frame_id!r}")
        return None
    if max_points is not None and too_many_points(health, cloud, what, max_points):
        return None
    try:
        pts = xyz_from_cloud_mm(cloud)
        if len(pts) < MIN_BONE_POINTS:
            raise ValueError(f"only {len(pts)} bone points")
    except ValueError as exc:
        health.reject(reason, str(exc))
        return None
    return pts
