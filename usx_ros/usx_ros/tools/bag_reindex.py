"""Repair a rosbag2 MCAP bag whose recorder died: ``usx bag reindex BAG``.

A recorder killed with ``kill -9`` leaves an MCAP file with no summary and no footer, and
no ``metadata.yaml`` (rosbags writes both on close). The records it holds up to its last
complete chunk (``mcap_scan``) are written again with rosbags' writer: a complete MCAP
(summary, footer) with a valid rosbag2 ``metadata.yaml`` (format v9, the type hashes from
the channels or computed from the schemas), which ``read_bag`` and ``ros2 bag play`` open.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from usx_ros.tools.mcap_scan import MAGIC, Channel, ScanEnd, Schema, scan_mcap


@dataclass
class ReindexReport:
    """What ``reindex_bag`` recovered.

    Attributes:
        bag: the repaired bag folder.
        messages: messages written to it.
        topics: messages per topic.
        complete: the damaged file had all its records (it had been closed).
        bytes_read: bytes of the damaged file read as valid records.
        bytes_dropped: bytes after them (a cut-off record, or the summary of a closed file).
        reason: why reading stopped.
        original: where the damaged file was kept (in-place repair), else None.
    """

    bag: Path
    messages: int = 0
    topics: dict[str, int] = field(default_factory=dict)
    complete: bool = False
    bytes_read: int = 0
    bytes_dropped: int = 0
    reason: str = ""
    original: Path | None = None

    def as_dict(self) -> dict:
        return {
            "bag": str(self.bag),
            "messages": self.messages,
            "topics": self.topics,
            "complete": self.complete,
            "bytes_read": self.bytes_read,
            "bytes_dropped": self.bytes_dropped,
            "reason": self.reason,
            "original": None if self.original is None else str(self.original),
        }


def _mcap_file(bag: Path) -> Path:
    if not bag.is_dir():
        raise ValueError(f"expected a rosbag2 bag folder, got {bag} (not a folder)")
    files = sorted(bag.glob("*.mcap"))
    if len(files) != 1:
        raise ValueError(f"expected one .mcap file in {bag}, found {[f.name for f in files]}")
    return files[0]


def _type_hash(schema: Schema) -> str:
    """The RIHS01 hash of a schema's type, from its definition (rosbag2 metadata needs it)."""
    from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

    text = schema.data.decode()
    if schema.encoding == "ros2msg":
        types = get_types_from_msg(text, schema.name)
    elif schema.encoding == "ros2idl":
        types = get_types_from_idl(text)
    else:
        raise ValueError(
            f"schema {schema.name!r}: expected encoding 'ros2msg' or 'ros2idl', got "
            f"{schema.encoding!r}"
        )
    store = get_typestore(Stores.EMPTY)
    store.register(types)
    return store.hash_rihs01(schema.name)


def _rewrite(source: Path, target: Path, end: ScanEnd) -> Counter:
    """Write what ``scan_mcap(source)`` yields as a new rosbag2 ``target``; messages per topic."""
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.metadata import parse_qos
    from rosbags.rosbag2.writer import StoragePlugin

    schemas: dict[int, Schema] = {}
    channels: dict[int, Channel] = {}
    connections = {}
    counts: Counter = Counter()
    with Writer(target, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for rec in scan_mcap(source, end):
            if isinstance(rec, Schema):
                schemas.setdefault(rec.id, rec)
            elif isinstance(rec, Channel):
                channels.setdefault(rec.id, rec)
            elif rec.channel_id in connections:
                writer.write(connections[rec.channel_id], rec.log_time_ns, rec.data)
                counts[channels[rec.channel_id].topic] += 1
            else:
                channel = channels.get(rec.channel_id)
                schema = schemas.get(channel.schema_id) if channel else None
                if schema is None:
                    end.reason = (
                        f"message of channel {rec.channel_id} with no channel or schema before it"
                    )
                    break
                connections[rec.channel_id] = writer.add_connection(
                    channel.topic,
                    schema.name,
                    msgdef=schema.data.decode(),
                    # ros2 bag record (Jazzy) stores the hash with the channel; rosbags does not
                    rihs01=channel.metadata.get("topic_type_hash") or _type_hash(schema),
                    serialization_format=channel.message_encoding,
                    offered_qos_profiles=parse_qos(
                        channel.metadata.get("offered_qos_profiles", "")
                    ),
                )
                writer.write(connections[rec.channel_id], rec.log_time_ns, rec.data)
                counts[channel.topic] += 1
    return counts


def reindex_bag(bag: str | Path, out: str | Path | None = None) -> ReindexReport:
    """Make the bag a killed recorder left readable again (see the module doc).

    Args:
        bag: the rosbag2 folder holding one ``.mcap`` file (``metadata.yaml`` may be missing).
        out: a new bag folder to write; None repairs ``bag`` in place: its ``.mcap`` is
            replaced and the damaged file kept beside it as ``<name>.mcap.orig`` (rosbag2
            readers open only the files that ``metadata.yaml`` lists).

    Returns:
        What was recovered; topics of channels with no message are not kept.

    Raises:
        ValueError: ``bag`` is not a folder with one ``.mcap`` file, the file is not MCAP,
            or ``out`` exists.
    """
    bag = Path(bag)
    source = _mcap_file(bag)
    with source.open("rb") as f:
        head = f.read(len(MAGIC))
    if head != MAGIC:
        raise ValueError(
            f"{source} is not an MCAP file: expected the magic {MAGIC!r} at its start, got {head!r}"
        )
    end = ScanEnd()
    if out is not None:
        target = Path(out)
        if target.exists():
            raise ValueError(f"--out {target} already exists; choose a new path")
        counts = _rewrite(source, target, end)
        original = None
    else:
        # Written beside the bag under the bag's own name (rosbags names the file after
        # the folder), then moved in: the bag folder never holds a half-written file.
        scratch = bag.parent / f".{bag.name}.reindex-{os.getpid()}"
        try:
            counts = _rewrite(source, scratch / bag.name, end)
            original = source.with_name(source.name + ".orig")
            os.replace(source, original)
            for f in (scratch / bag.name).iterdir():
                os.replace(f, bag / f.name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        target = bag
    return ReindexReport(
        bag=target,
        messages=sum(counts.values()),
        topics=dict(counts),
        complete=end.complete,
        bytes_read=end.offset,
        bytes_dropped=end.size - end.offset,
        reason=end.reason,
        original=original,
    )
