"""Node health on ``/diagnostics`` (diagnostic_msgs/DiagnosticArray), the topic ROS tools read.

Every usx node reports one ``DiagnosticStatus`` named after itself, once per period:

- level ``ERROR`` or ``WARN`` when the node's own check says so (e.g. the last sweep lost
  too many frames, a level was not completed), else ``WARN`` when input was rejected
  since the previous report, else ``OK``;
- ``WARN`` with message ``<state>: not processing`` while a managed node is not active
  (unless its own check says ERROR);
- ``message``: what the level is about, in one line;
- ``values``: ``accepted``, ``rejected`` (total) and ``rejected.<reason>`` (totals since
  start), ``lifecycle_state`` and ``dropped_inactive`` for a managed node, then the
  node's own counters, nested keys joined with dots.

``~/status`` (one JSON object) stays as a documented extra for scripts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from usx_ros.health import InputHealth
from usx_ros.interfaces import Endpoint
from usx_ros.nodes.managed import ACTIVE, AnyState
from usx_ros.qos import DIAGNOSTICS_QOS

DIAGNOSTICS_TOPIC = "/diagnostics"
#: Every node's ENDPOINTS lists it.
DIAGNOSTICS_ENDPOINT = Endpoint(
    "publishes", DIAGNOSTICS_TOPIC, "diagnostic_msgs/msg/DiagnosticArray", "DIAGNOSTICS_QOS", "1 Hz"
)
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR

#: A node check: None when all is well, else (level, one-line message).
Check = Callable[[], tuple[bytes, str] | None]


def key_values(values: Mapping, prefix: str = "") -> list[KeyValue]:
    """Nested mappings -> KeyValue list, keys joined with dots, values as text.

    Floats keep 6 significant digits; lists and other values are JSON; None is empty.
    """
    out = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.extend(key_values(value, f"{name}."))
        elif value is None:
            out.append(KeyValue(key=name, value=""))
        elif isinstance(value, bool):
            out.append(KeyValue(key=name, value=str(value).lower()))
        elif isinstance(value, float):
            out.append(KeyValue(key=name, value=f"{value:.6g}"))
        elif isinstance(value, int | str):
            out.append(KeyValue(key=name, value=str(value)))
        else:
            out.append(KeyValue(key=name, value=json.dumps(value)))
    return out


class NodeDiagnostics:
    """Publishes ``node``'s status on ``/diagnostics`` every ``period_s``.

    The first report goes out ``first_s`` after the node is built, not a whole period
    later: a monitor (or a launcher's restart check) sees a restarted node as back sooner.

    Args:
        node: the rclpy node (its name names the status).
        health: its input counters.
        values: the node's own counters (a mapping, nested allowed), read at each report.
        check: the node's own judgement (see :data:`Check`).
        period_s: report period (ROS diagnostics are typically 1 Hz).
        first_s: delay of the first report (the node's subscribers are discovered by then
            on one host; a report to no subscriber is lost, diagnostics are volatile).
    """

    def __init__(
        self,
        node,
        health: InputHealth,
        values: Callable[[], Mapping] | None = None,
        check: Check | None = None,
        period_s: float = 1.0,
        first_s: float = 0.25,
    ) -> None:
        self.node = node
        self.health = health
        self._values = values
        self._check = check
        self._seen: Counter[str] = Counter()
        self.pub = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)
        # reports in every lifecycle state of a managed node, not only while active
        self.timer = node.create_timer(period_s, AnyState(self.publish))
        self._first = node.create_timer(min(first_s, period_s), AnyState(self._publish_first))

    def _publish_first(self) -> None:
        self._first.cancel()
        self.publish()

    def status(self) -> DiagnosticStatus:
        """The node's status now (and the rejections since the previous call are seen)."""
        counts = Counter(self.health.counts)
        new = counts - self._seen
        self._seen = counts
        verdict = self._check() if self._check else None
        state = getattr(self.node, "lifecycle_state", ACTIVE)
        if state != ACTIVE and (verdict is None or verdict[0] != ERROR):
            level, message = WARN, f"{state}: not processing"
        elif verdict is not None:
            level, message = verdict
        elif new:
            level = WARN
            message = "rejected since the last report: " + ", ".join(
                f"{reason} ({n})" for reason, n in sorted(new.items())
            )
        else:
            level, message = OK, "ok"
        kv = key_values({"accepted": self.health.accepted, "rejected": sum(counts.values())})
        if hasattr(self.node, "lifecycle_state"):
            kv += key_values(
                {"lifecycle_state": state, "dropped_inactive": self.node.dropped_inactive}
            )
        kv += key_values({f"rejected.{r}": n for r, n in sorted(counts.items())})
        if self._values is not None:
            kv += key_values(self._values())
        return DiagnosticStatus(
            level=level,
            name=self.node.get_name(),
            message=message,
            hardware_id="usx",
            values=kv,
        )

    def publish(self) -> None:
        msg = DiagnosticArray(status=[self.status()])
        msg.header.stamp = self.node.get_clock().now().to_msg()
        self.pub.publish(msg)
