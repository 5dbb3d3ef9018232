"""bag_record: record topics to a rosbag2 (MCAP) bag, as ``ros2 bag record`` would.

Each topic's type is discovered from the graph (retried on a timer until a publisher
appears); the subscription takes the publishers' QoS (best effort if any publisher is,
transient local only if all are, so that it matches every one of them) and receives the
serialised CDR bytes (``raw=True``), which go to the bag untouched with the offered QoS
in the bag's metadata, so that ``bag_replay`` and ``ros2 bag play`` publish with the same
QoS.

Record stamps (``stamp``): ``sent`` (default) stores each message's send time, the DDS
source timestamp, so the bag keeps the publishers' order across topics and a replay
reproduces it. Receive times do not: one process receives a large image later than a
small message sent after it, and a replayed sweep then lost its last frame (the image
arrived after the stop edge published after it). ``received`` stores the receive time on
the node clock, as ``ros2 bag record`` does. A send time is used only when it lies between
the subscription's creation (a latched message sent long before is stamped then, so a
replay does not wait for it) and the receive time (a later one means the publisher's
clock is ahead: the receive time is stored); ``sent`` assumes the publishers share the
recorder's system clock (one host, or hosts synchronised by PTP/chrony).

Crashes (``usx launch phantom --isolated --record DIR`` restarts a recorder that exits):
with ``bag_dir`` every start writes a new bag ``bag_dir/NNN_YYYYMMDDTHHMMSSZ`` (NNN: one
more than the highest number there, from 001; the UTC start time), so a restarted
recorder goes on in a new bag next to the one the dead process left. A killed process
leaves its MCAP file without summary and footer and no ``metadata.yaml`` (rosbags writes
them on close): ``usx bag reindex BAG`` makes it a complete bag again. What a ``kill -9``
can lose is bounded by ``flush_period_s``: rosbags holds messages in an in-memory chunk
until it passes 1 MiB; this node closes the chunk and flushes the file at least every
``flush_period_s`` (default 1 s), so the loss is at most the messages of the last
``flush_period_s`` or 1 MiB, whichever is less. Measured with ``usx bench faults`` on the
phantom graph (100 Hz joint states, 30 Hz 512x512 frames, 2 cores, default period): over
4.5 min the most messages held in memory only were 104, for at most 1.00 s (between
sweeps: joint states only; during a sweep four frames pass 1 MiB, so a chunk closes every
~0.13 s); a kill 6 ms after a report lost the 5 messages written since the last flush.
Messages still queued in the middleware when the process dies are lost as with any
recorder. ``/diagnostics`` reports ``messages_written`` (handed to the writer),
``messages_flushed`` (in the file), ``unflushed_max`` and ``unflushed_max_s`` (the most
messages and the longest time held in memory only so far: the worst kill's loss) and the
bag's path.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from usx_ros.diagnostics import NodeDiagnostics
from usx_ros.health import InputHealth
from usx_ros.interfaces import Endpoint
from usx_ros.nodes.common import run_node
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.tools.bag import BagWriter, message_class

#: Topics of one phantom sweep (what the compounding and completion nodes consume).
DEFAULT_TOPICS = [
    "/lbr/joint_states",
    "/us/image",
    "/usx/xray",
    "/usx/phantom/ground_truth",
    "/usx/phantom/sweep_active",
]
#: Graph-internal topics never recorded when recording everything.
_IGNORED = ("/rosout", "/parameter_events")


@dataclass(frozen=True)
class RecordParams:
    """Parameters of bag_record."""

    output: str = param("", "bag folder to create (must not exist)", read_only=True)
    bag_dir: str = param(
        "",
        "instead of output: folder that gets a new bag NNN_YYYYMMDDTHHMMSSZ at every start "
        "(a restarted recorder records on in a new bag)",
        read_only=True,
    )
    topics: tuple[str, ...] = param(
        tuple(DEFAULT_TOPICS), "topics to record; empty = every topic seen", read_only=True
    )
    stamp: str = param(
        "sent",
        "record stamp: 'sent' (publisher's send time: the bag keeps the send order "
        "across topics) or 'received' (receive time on the node clock, as ros2 bag record)",
        choices=("sent", "received"),
        read_only=True,
    )
    discovery_period_s: float = param(
        0.5,
        "how often to look for missing topics, s",
        min_value=0.01,
        max_value=60.0,
        read_only=True,
    )
    flush_period_s: float = param(
        1.0,
        "close the pending MCAP chunk and flush the file at least this often, s: a kill "
        "-9 loses at most the messages of this period (or of 1 MiB)",
        min_value=0.05,
        max_value=60.0,
        read_only=True,
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = RecordParams

ENDPOINTS = (
    Endpoint("subscribes", "(each of topics)", "as discovered", "", "the publishers' QoS"),
)


#: Bags that ``next_bag_path`` writes: number (start order) and UTC start time.
_BAG_NAME = re.compile(r"(\d+)_\d{8}T\d{6}Z")


def next_bag_path(bag_dir: Path, now_s: float | None = None) -> Path:
    """``bag_dir/NNN_YYYYMMDDTHHMMSSZ``: the next bag of a recorder that starts again.

    NNN is one more than the highest number of a bag already in ``bag_dir`` (001 for the
    first), so the names sort in start order even if the clock jumps; the time (UTC,
    ``now_s`` s since the epoch, default now) is for people.
    """
    numbers = [
        int(m.group(1))
        for p in (bag_dir.iterdir() if bag_dir.is_dir() else ())
        if (m := _BAG_NAME.fullmatch(p.name))
    ]
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now_s is None else now_s))
    return bag_dir / f"{max(numbers, default=0) + 1:03d}_{stamp}"


def _bag_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile as rosbag2 metadata (deadline/lifespan left at the defaults)."""
    zero = QosTime(0, 0)
    return Qos(
        history=QosHistory(int(profile.history)),
        depth=int(profile.depth),
        reliability=QosReliability(int(profile.reliability)),
        durability=QosDurability(int(profile.durability)),
        deadline=zero,
        lifespan=zero,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=zero,
        avoid_ros_namespace_conventions=False,
    )


def subscription_qos(offered: list[QoSProfile]) -> QoSProfile:
    """The QoS that matches every offered publisher QoS (none known: reliable, volatile)."""
    best_effort = any(q.reliability == ReliabilityPolicy.BEST_EFFORT for q in offered)
    latched = bool(offered) and all(
        q.durability == DurabilityPolicy.TRANSIENT_LOCAL for q in offered
    )
    # A recorder must not lose what a busy process cannot take at once: deep queues
    # (reliable streams are small messages; best-effort ones are images).
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=max([100 if best_effort else 2000, *(q.depth for q in offered)]),
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def record_stamp(sent_ns: int, received_ns: int, since_ns: int) -> int:
    """A message's record stamp (ns) under ``stamp: sent``.

    Args:
        sent_ns: the DDS source timestamp (0 when the middleware gave none).
        received_ns: the receive time on the same (system) clock.
        since_ns: when the recorder subscribed to the topic.

    Returns:
        ``sent_ns`` clamped to ``[since_ns, received_ns]``; ``received_ns`` when there is
        no send time or it is later than the receive time (the sender's clock is ahead).
    """
    if sent_ns <= 0 or sent_ns > received_ns:
        return received_ns
    return max(sent_ns, min(since_ns, received_ns))


class _RawBagWriter(BagWriter):
    """BagWriter that stores already-serialised CDR bytes (no deserialise/serialise trip)."""

    def write_raw(self, topic: str, type_name: str, data: bytes, stamp_ns: int, qos: Qos) -> None:
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(
                topic, type_name, typestore=self._store, offered_qos_profiles=[qos]
            )
            self._connections[topic] = conn
        self._writer.write(conn, int(stamp_ns), data)
        self._written()


class BagRecorder(Node):
    """Records the configured topics until shutdown; ``close()`` finishes the bag."""

    params: RecordParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("bag_record", **kwargs)
        p = declare_params(self, RecordParams)
        if not p.output and not p.bag_dir:
            raise ParameterError(
                "parameter 'output': expected a bag folder path (or 'bag_dir': a folder for a "
                "new bag per start), got ''"
            )
        if p.output and p.bag_dir:
            raise ParameterError(
                "parameters 'output' and 'bag_dir': expected one of them, got both "
                f"({p.output!r}, {p.bag_dir!r})"
            )
        name = "output" if p.output else "bag_dir"
        try:
            path = Path(p.output) if p.output else next_bag_path(Path(p.bag_dir))
            self._writer = _RawBagWriter(path)
            self._writer.__enter__()
        except (ValueError, OSError) as exc:
            raise ParameterError(f"parameter '{name}': {exc}") from exc
        self._lock = threading.Lock()
        self._closed = False
        #: topic -> type name of every topic being recorded
        self.recording: dict[str, str] = {}
        self._timer = self.create_timer(p.discovery_period_s, self._discover)
        self._flush_timer = self.create_timer(p.flush_period_s, self.flush)
        self.diagnostics = NodeDiagnostics(
            self,
            InputHealth(self.get_logger()),
            lambda: {
                "messages_written": self.count,
                "messages_flushed": self._writer.flushed,
                "unflushed_max": self._writer.unflushed_max,
                "unflushed_max_s": self._writer.unflushed_max_s,
                "topics": len(self.recording),
                "bag": str(self.path),
            },
        )
        self.get_logger().info(f"recording to {self.path}")
        self._discover()

    @property
    def count(self) -> int:
        """Messages written so far."""
        return self._writer.count

    @property
    def path(self) -> Path:
        return self._writer.path

    def _discover(self) -> None:
        wanted = set(self.params.topics)
        for topic, types in self.get_topic_names_and_types():
            if topic in self.recording or topic in _IGNORED or (wanted and topic not in wanted):
                continue
            offered = [i.qos_profile for i in self.get_publishers_info_by_topic(topic)]
            if not offered:
                continue  # only subscribers so far: the publishers' QoS is unknown
            if len(types) > 1:
                self.get_logger().warning(f"{topic} has several types {types}; using {types[0]}")
            try:
                msg_class = message_class(types[0])
            except ValueError as exc:
                self.get_logger().warning(f"not recording {topic}: {exc}")
                self.recording[topic] = types[0]  # do not retry every period
                continue
            qos = subscription_qos(offered)
            bag_qos = _bag_qos(qos)
            since_ns = time.time_ns()  # the rmw stamps' clock (system time)
            self.create_subscription(
                msg_class,
                topic,
                functools.partial(self._on_message, topic, types[0], bag_qos, since_ns),
                qos,
                raw=True,
            )
            self.recording[topic] = types[0]
            self.get_logger().info(f"recording {topic} ({types[0]})")
        if wanted and wanted <= set(self.recording):
            self._timer.cancel()  # everything found: stop polling the graph

    def _stamp(self, info: dict, since_ns: int) -> int:
        """Record stamp (ns) of a message with rmw ``info``, per the ``stamp`` parameter."""
        if self.params.stamp == "received":
            return self.get_clock().now().nanoseconds
        return record_stamp(
            info.get("source_timestamp") or 0,
            info.get("received_timestamp") or time.time_ns(),
            since_ns,
        )

    def _on_message(
        self, topic: str, type_name: str, qos: Qos, since_ns: int, data: bytes, info: dict
    ) -> None:
        stamp = self._stamp(info, since_ns)
        with self._lock:
            if not self._closed:
                self._writer.write_raw(topic, type_name, data, stamp, qos)

    def flush(self) -> None:
        """Put every message written so far into the file (see the module doc)."""
        with self._lock:
            if not self._closed:
                self._writer.flush()

    def close(self) -> None:
        """Finish the bag (idempotent); later messages are ignored."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.__exit__(None, None, None)
        self.get_logger().info(f"closed {self._writer.path} with {self._writer.count} messages")

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(BagRecorder, args)


if __name__ == "__main__":
    main()
