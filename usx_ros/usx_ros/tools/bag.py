"""rosbag2 (MCAP) recording and reading with the pure-Python ``rosbags`` library.

Messages are stored exactly as rclpy serialises them (CDR), with the message
definitions in the MCAP schema records, so the bags play with ``ros2 bag play`` on a
real Jazzy install. The usx_msgs definitions are registered from the installed
``.msg`` files, so a bag of our own types is self-describing too.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, Writer
from rosbags.rosbag2.writer import StoragePlugin
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

_CUSTOM_PACKAGES = ("usx_msgs",)


def message_type_name(msg_class: type) -> str:
    """``sensor_msgs.msg.Image`` -> ``"sensor_msgs/msg/Image"``."""
    module = msg_class.__module__.split(".")
    return f"{module[0]}/{module[1]}/{msg_class.__name__}"


def message_class(type_name: str) -> type:
    """``"sensor_msgs/msg/Image"`` -> the rclpy message class.

    Raises:
        ValueError: malformed name or a type that is not installed.
    """
    parts = type_name.split("/")
    if len(parts) != 3 or parts[1] not in ("msg", "srv"):
        raise ValueError(f"expected a type name like 'pkg/msg/Name', got {type_name!r}")
    try:
        return getattr(importlib.import_module(f"{parts[0]}.{parts[1]}"), parts[2])
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"message type {type_name!r} is not installed") from exc


def typestore() -> Typestore:
    """The Jazzy typestore plus the usx_msgs definitions from their installed .msg files."""
    from ament_index_python.packages import get_package_share_directory

    store = get_typestore(Stores.ROS2_JAZZY)
    for pkg in _CUSTOM_PACKAGES:
        share = Path(get_package_share_directory(pkg))
        types = {}
        for path in sorted((share / "msg").glob("*.msg")):
            types.update(get_types_from_msg(path.read_text(), f"{pkg}/msg/{path.stem}"))
        store.register(types)
    return store


@dataclass(frozen=True)
class BagRecord:
    """One stored message: topic, type name, receive stamp (ns) and its CDR bytes."""

    topic: str
    type_name: str
    stamp_ns: int
    data: bytes

    def deserialize(self):
        """The rclpy message object."""
        return deserialize_message(self.data, message_class(self.type_name))


class BagWriter:
    """Write rclpy messages to a new rosbag2 (format v9, MCAP storage).

    Use as a context manager; ``write`` adds topics on first use.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists():
            raise ValueError(f"bag {self.path} already exists; choose a new path")
        self._store = typestore()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._connections: dict[str, Connection] = {}
        self.count = 0
        #: messages in the file (complete MCAP chunks), the rest is still in memory
        self.flushed = 0
        #: the most messages, and the longest time (s), that were held in memory only:
        #: what a kill at the worst moment so far would have lost
        self.unflushed_max = 0
        self.unflushed_max_s = 0.0
        self._chunk = None  # rosbags' pending chunk, to see when it closes one itself
        self._first_unflushed_s: float | None = None

    def __enter__(self) -> BagWriter:
        self._writer.open()
        self._chunk = self._writer.storage.chunk
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()
        self.flushed = self.count

    def flush(self) -> None:
        """Move every message written so far into the file as one complete MCAP chunk.

        rosbags' MCAP storage keeps messages in an in-memory chunk until it passes 1 MiB
        (and writes the summary and ``metadata.yaml`` only on close); a process killed in
        between loses that chunk. After ``flush`` a kill loses nothing written before it,
        and ``usx bag reindex`` recovers it. Uses rosbags' ``McapWriter.close_chunk`` and
        its file object (rosbags 0.11; pinned by ``usx_ros/test/tools/test_bag_reindex.py``).
        """
        storage = self._writer.storage
        if storage is None:
            return
        if storage.chunk.bio.tell():
            storage.close_chunk()
        storage.bio.flush()
        self._chunk_closed()

    def _written(self) -> None:
        """Count one message handed to rosbags, and notice a chunk rosbags closed on its own
        (past 1 MiB; the chunk goes to the file in one large, unbuffered write)."""
        self.count += 1
        if self._first_unflushed_s is None:
            self._first_unflushed_s = time.monotonic()
        if self._writer.storage.chunk is not self._chunk:
            self._chunk_closed()

    def _chunk_closed(self) -> None:
        self.unflushed_max = max(self.unflushed_max, self.count - self.flushed)
        if self._first_unflushed_s is not None:
            held_s = time.monotonic() - self._first_unflushed_s
            self.unflushed_max_s = max(self.unflushed_max_s, held_s)
        self.flushed, self._first_unflushed_s = self.count, None
        self._chunk = self._writer.storage.chunk

    def write(self, topic: str, msg, stamp_ns: int) -> None:
        """Serialise ``msg`` (an rclpy message) and store it under ``topic`` at ``stamp_ns``."""
        type_name = message_type_name(type(msg))
        conn = self._connections.get(topic)
        if conn is None:
            conn = self._writer.add_connection(topic, type_name, typestore=self._store)
            self._connections[topic] = conn
        elif conn.msgtype != type_name:
            raise ValueError(f"topic {topic!r} holds {conn.msgtype}, got a {type_name}")
        self._writer.write(conn, int(stamp_ns), serialize_message(msg))
        self._written()


def open_bag(path: str | Path) -> Reader:
    """An opened rosbags ``Reader`` (close it); ValueError naming the bag when unreadable."""
    path = Path(path)
    if not (path / "metadata.yaml").is_file():
        raise ValueError(f"{path} is not a rosbag2 folder (no metadata.yaml)")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as exc:  # rosbags raises several types for damaged bags
        raise ValueError(f"cannot open bag {path}: {exc}") from exc
    return reader


def read_bag(path: str | Path, topics: Iterable[str] | None = None) -> Iterator[BagRecord]:
    """Yield the records of a rosbag2 in stamp order (any storage rosbags reads).

    Raises:
        ValueError: the path is not a readable rosbag2 (missing, corrupt metadata or storage).
    """
    path = Path(path)
    reader = open_bag(path)
    try:
        wanted = set(topics) if topics is not None else None
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        try:
            for conn, stamp, raw in reader.messages(connections=conns):
                yield BagRecord(conn.topic, conn.msgtype, int(stamp), bytes(raw))
        except Exception as exc:
            raise ValueError(f"bag {path} is damaged: {exc}") from exc
    finally:
        reader.close()
