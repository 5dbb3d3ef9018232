"""bag_replay: publish a rosbag2 bag's messages again, as ``ros2 bag play`` would.

Each record's serialised bytes are published unchanged on its topic (rclpy publishes
bytes as they are), so header stamps stay the recorded ones. Timing follows the record
stamps scaled by ``rate`` (0 = as fast as possible). QoS per topic: the one stored in the
bag by ``bag_record`` when there is one; otherwise result topics (``/usx/xray``,
``/usx/phantom/ground_truth``, ``*completed_spine``) are reliable + transient local,
images best effort, everything else reliable (see ``usx_ros.qos``). ``/usx/replay/active``
(Bool, transient local) is true while playing and false once the bag is exhausted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import QosDurability, QosReliability
from std_msgs.msg import Bool

from usx_ros.interfaces import Endpoint
from usx_ros.nodes.common import run_node
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.tools.bag import message_class, open_bag, read_bag


@dataclass(frozen=True)
class ReplayParams:
    """Parameters of bag_replay."""

    bag: str = param("", "rosbag2 folder to play", read_only=True)
    rate: float = param(
        1.0,
        "playback speed; 1 = recorded timing, 0 = as fast as possible",
        min_value=0.0,
        max_value=1000.0,
        read_only=True,
    )
    topics: tuple[str, ...] = param((), "topics to play; empty = all", read_only=True)
    loop: bool = param(False, "start again at the end (header stamps repeat)", read_only=True)
    start_delay_s: float = param(
        0.5,
        "wait before the first message (graph connects)",
        min_value=0.0,
        max_value=600.0,
        read_only=True,
    )
    wait_for_subscribers: bool = param(
        False, "also wait until every topic has a subscriber", read_only=True
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = ReplayParams

ENDPOINTS = (
    Endpoint("publishes", "(each topic of the bag)", "as recorded", "", "the recorded QoS"),
    Endpoint("publishes", "/usx/replay/active", "std_msgs/msg/Bool", "RESULT_QOS"),
)

_RESULT_TOPICS = ("/usx/xray", "/usx/phantom/ground_truth")
_IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
_PERIOD_S = 0.005  # publishing timer; records are stamped, so a few ms of jitter is harmless
_BURST = 200  # records per tick at rate 0, so that other callbacks still run


def replay_qos(topic: str, type_name: str, recorded=None) -> QoSProfile:
    """QoS for replaying ``topic``: the recorded one (a rosbags ``Qos``) or by topic/type."""
    if recorded is not None:
        return QoSProfile(
            depth=max(int(recorded.depth), STATE_QOS.depth),
            reliability=ReliabilityPolicy.BEST_EFFORT
            if recorded.reliability == QosReliability.BEST_EFFORT
            else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL
            if recorded.durability == QosDurability.TRANSIENT_LOCAL
            else DurabilityPolicy.VOLATILE,
        )
    if topic in _RESULT_TOPICS or topic.endswith("completed_spine"):
        return RESULT_QOS
    return SENSOR_QOS if type_name in _IMAGE_TYPES else STATE_QOS


def _connections(path: Path) -> dict[str, tuple[str, object]]:
    """topic -> (type name, recorded QoS or None) from the bag's metadata."""
    reader = open_bag(path)
    try:
        out = {}
        for conn in reader.connections:
            profiles = getattr(conn.ext, "offered_qos_profiles", None) or [None]
            out[conn.topic] = (conn.msgtype, profiles[0])
        return out
    finally:
        reader.close()


class BagReplayer(Node):
    """Plays one bag (or loops it); ``done`` once it is exhausted."""

    params: ReplayParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("bag_replay", **kwargs)
        p = declare_params(self, ReplayParams)
        self._path = Path(p.bag)
        if not p.bag:
            raise ParameterError("parameter 'bag': expected a rosbag2 folder, got ''")
        wanted = [t for t in p.topics if t]
        try:
            conns = _connections(self._path)
            missing = sorted(set(wanted) - set(conns))
            if missing:
                raise ValueError(f"bag {self._path} has no topic(s) {missing}")
            self._topics = wanted or sorted(conns)
            self._records = read_bag(self._path, self._topics)
            self._pending = next(self._records, None)  # reads the storage: damage shows now
        except ValueError as exc:
            raise ParameterError(f"parameter 'bag': {exc}") from exc
        self._pubs = {}
        for topic in self._topics:
            type_name, recorded = conns[topic]
            msg_class = self._message_class(topic, type_name)
            self._pubs[topic] = self.create_publisher(
                msg_class, topic, replay_qos(topic, type_name, recorded)
            )
        self._pub_active = self.create_publisher(Bool, "/usx/replay/active", RESULT_QOS)
        self.published = 0
        self.error: str | None = None
        self._done = False
        self._t0_wall = self._t0_bag = None
        self._start_after = self._now() + int(p.start_delay_s * 1e9)
        self._timer = self.create_timer(_PERIOD_S, self._on_tick)

    @staticmethod
    def _message_class(topic: str, type_name: str):
        try:
            return message_class(type_name)
        except ValueError as exc:
            raise ParameterError(f"parameter 'bag': topic {topic}: {exc}") from exc

    @property
    def done(self) -> bool:
        """The bag is exhausted (never with ``loop``) or became unreadable."""
        return self._done

    @property
    def publishers_by_topic(self) -> dict:
        return dict(self._pubs)

    def _now(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_tick(self) -> None:
        if self._done:
            return
        now = self._now()
        if self._t0_wall is None:
            waiting = self.params.wait_for_subscribers and any(
                p.get_subscription_count() == 0 for p in self._pubs.values()
            )
            if now < self._start_after or waiting:
                return
            self._restart(now)
        rate = self.params.rate
        for _ in range(_BURST):
            rec = self._pending
            if rec is None:
                self._finish(now)
                return
            if rate > 0 and self._t0_wall + (rec.stamp_ns - self._t0_bag) / rate > now:
                return
            self._pubs[rec.topic].publish(rec.data)
            self.published += 1
            try:
                self._pending = next(self._records, None)
            except ValueError as exc:
                self.error = str(exc)
                self.get_logger().error(f"stopping replay: {exc}")
                self._pending = None

    def _restart(self, now: int) -> None:
        self._t0_wall = now
        self._t0_bag = self._pending.stamp_ns if self._pending is not None else 0
        self._pub_active.publish(Bool(data=True))

    def _finish(self, now: int) -> None:
        if self.params.loop and self.error is None and self.published > 0:
            self._records = read_bag(self._path, self._topics)
            self._pending = next(self._records, None)
            self._restart(now)
            return
        self._done = True
        self._timer.cancel()
        self._pub_active.publish(Bool(data=False))
        self.get_logger().info(f"replay of {self._path} done: {self.published} messages")

    def close(self) -> None:
        """Release the bag reader (idempotent)."""
        self._records.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(BagReplayer, args)


if __name__ == "__main__":
    main()
