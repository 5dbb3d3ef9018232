"""Read an MCAP file's records in file order, up to the first cut-off or corrupt one.

What a recorder killed with ``kill -9`` leaves is an MCAP file that ends somewhere in its
data section: no summary, no footer, maybe half a record. The records before that point
are intact, so :func:`scan_mcap` reads them in order (MCAP: the magic ``\x89MCAP0\r\n``,
then records of opcode (1 byte), length (uint64 LE) and content; schemas, channels and
messages sit on their own or inside chunk records, compressed with zstd or lz4 or not at
all — rosbags writes them uncompressed, ``ros2 bag record`` with zstd) and stops at the
first record that is cut off or does not parse. A chunk is taken whole or not at all (its
size, compression and CRC must check out). Used by ``usx bag reindex`` (``bag_reindex``).

MCAP format: https://mcap.dev/spec (the record layouts below follow it).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\x89MCAP0\r\n"

_SCHEMA, _CHANNEL, _MESSAGE, _CHUNK = 0x03, 0x04, 0x05, 0x06
_FOOTER, _DATA_END = 0x02, 0x0F


class _Corrupt(Exception):
    """A record that does not parse (internal: ends the scan there)."""


@dataclass(frozen=True)
class Schema:
    """An MCAP schema: the message type name, its definition's encoding and text."""

    id: int
    name: str
    encoding: str
    data: bytes


@dataclass(frozen=True)
class Channel:
    """An MCAP channel: a topic of one schema, with rosbag2's metadata (QoS)."""

    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class Message:
    """One message: its channel, log time (ns) and serialised bytes."""

    channel_id: int
    log_time_ns: int
    data: bytes


@dataclass
class ScanEnd:
    """Where and why a scan stopped.

    Attributes:
        offset: bytes of the file that were read as valid records (from the start).
        size: the file's size, bytes.
        complete: the scan reached the end of the data section (the file was closed).
        reason: why it stopped, in words.
    """

    offset: int = 0
    size: int = 0
    complete: bool = False
    reason: str = ""


class _Reader:
    """Little-endian fields from one record's content; ``_Corrupt`` past its end."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _Corrupt(f"field of {n} bytes runs past the record's end")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "little")

    def string(self) -> str:
        try:
            return self.take(self.uint(4)).decode()
        except UnicodeDecodeError as exc:
            raise _Corrupt(f"string is not UTF-8: {exc}") from exc

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)


def _schema(content: bytes) -> Schema:
    r = _Reader(content)
    return Schema(r.uint(2), r.string(), r.string(), r.take(r.uint(4)))


def _channel(content: bytes) -> Channel:
    r = _Reader(content)
    cid, sid, topic, encoding = r.uint(2), r.uint(2), r.string(), r.string()
    meta = _Reader(r.take(r.uint(4)))
    metadata = {}
    while meta.pos < len(meta.data):
        key = meta.string()
        metadata[key] = meta.string()
    return Channel(cid, sid, topic, encoding, metadata)


def _message(content: bytes) -> Message:
    r = _Reader(content)
    cid, _sequence, log_time = r.uint(2), r.uint(4), r.uint(8)
    r.uint(8)  # publish time: rosbag2 keeps the log time only
    return Message(cid, log_time, r.rest())


_PARSERS = {_SCHEMA: _schema, _CHANNEL: _channel, _MESSAGE: _message}


def _decompress(data: bytes, compression: str) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        try:
            from compression import zstd  # Python >= 3.14
        except ImportError:
            from backports import zstd
        return zstd.decompress(data)
    if compression == "lz4":
        import lz4.frame

        return lz4.frame.decompress(data)
    raise _Corrupt(f"chunk compression {compression!r} is not one of '', 'zstd', 'lz4'")


def _chunk(content: bytes) -> list[Schema | Channel | Message]:
    """The records of one chunk, all of them or ``_Corrupt``."""
    r = _Reader(content)
    r.take(16)  # message start and end time: the messages carry their own
    size, crc, compression = r.uint(8), r.uint(4), r.string()
    packed = r.take(r.uint(8))
    try:
        raw = _decompress(packed, compression)
    except _Corrupt:
        raise
    except Exception as exc:  # zstd and lz4 raise their own error types
        raise _Corrupt(f"chunk does not decompress: {exc}") from exc
    if len(raw) != size:
        raise _Corrupt(f"chunk holds {len(raw)} bytes, its header says {size}")
    if crc and zlib.crc32(raw) != crc:
        raise _Corrupt("chunk CRC mismatch")
    out = []
    inner = _Reader(raw)
    while inner.pos < len(raw):
        op, length = inner.uint(1), inner.uint(8)
        body = inner.take(length)
        if op in _PARSERS:
            out.append(_PARSERS[op](body))
    return out


def scan_mcap(path: str | Path, end: ScanEnd | None = None) -> Iterator[Schema | Channel | Message]:
    """Yield the schemas, channels and messages of an MCAP file in file order, up to the
    first record that is cut off or corrupt (a truncated file is not an error).

    Args:
        path: the ``.mcap`` file.
        end: filled in when the generator is exhausted (see :class:`ScanEnd`).

    Raises:
        ValueError: the file does not start with the MCAP magic.
    """
    path = Path(path)
    end = end if end is not None else ScanEnd()
    end.size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(len(MAGIC))
        if head != MAGIC:
            raise ValueError(
                f"{path} is not an MCAP file: expected the magic {MAGIC!r} at its start, "
                f"got {head!r}"
            )
        end.offset = f.tell()
        while True:
            header = f.read(9)
            if len(header) < 9:
                end.reason = (
                    "end of file without a footer"
                    if not header
                    else f"record header cut off at byte {end.offset}"
                )
                return
            op, length = header[0], struct.unpack("<Q", header[1:])[0]
            if op == 0:
                end.reason = f"invalid opcode 0 at byte {end.offset}"
                return
            if end.offset + 9 + length > end.size:
                end.reason = (
                    f"record 0x{op:02x} at byte {end.offset} cut off: {length} bytes announced, "
                    f"{end.size - end.offset - 9} in the file"
                )
                return
            content = f.read(length)
            if op in (_DATA_END, _FOOTER):
                end.offset += 9 + length
                end.complete, end.reason = True, "end of the data section"
                return
            try:
                if op == _CHUNK:
                    records = _chunk(content)
                elif op in _PARSERS:
                    records = [_PARSERS[op](content)]
                else:
                    records = []  # indexes, attachments, metadata: the writer makes new ones
            except _Corrupt as exc:
                end.reason = f"record 0x{op:02x} at byte {end.offset} is corrupt: {exc}"
                return
            yield from records
            end.offset += 9 + length
