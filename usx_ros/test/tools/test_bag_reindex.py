"""usx bag reindex: a bag cut off at any byte reads again up to its last complete chunk."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from sensor_msgs.msg import Image, JointState

from usx_ros.tools.bag import BagWriter, read_bag, typestore
from usx_ros.tools.bag_reindex import reindex_bag
from usx_ros.tools.mcap_scan import ScanEnd, scan_mcap

pytestmark = pytest.mark.ros

#: messages per chunk of the test bag (BagWriter.flush closes a chunk)
CHUNKS = (3, 4, 2, 5)


def _image(i: int) -> Image:
    img = Image(height=4, width=8, encoding="mono8", step=8)
    img.header.stamp.sec = i
    img.data = bytes([i % 256]) * 32
    return img


def _joints(i: int) -> JointState:
    return JointState(name=["lbr_A1"], position=[0.01 * i])


@pytest.fixture
def chunked(tmp_path):
    """A closed bag of len(CHUNKS) chunks; (bag, file size after each chunk, messages)."""
    bag = tmp_path / "src"
    sent = []
    ends = []
    with BagWriter(bag) as w:
        for n in CHUNKS:
            for _ in range(n):
                i = len(sent)
                topic, msg = (
                    ("/us/image", _image(i)) if i % 2 else ("/lbr/joint_states", _joints(i))
                )
                w.write(topic, msg, stamp_ns=1000 + i)
                sent.append((topic, 1000 + i))
            w.flush()
            ends.append(w._writer.storage.bio.tell())
    return bag, ends, sent


def _cut(src, dst, size: int):
    dst.mkdir()
    data = next(src.glob("*.mcap")).read_bytes()[:size]
    (dst / f"{dst.name}.mcap").write_bytes(data)
    return dst


def _cases():
    # (name, cut offset as a function of the chunk ends, complete chunks kept)
    yield "magic only", lambda ends: 8, 0
    yield "header cut", lambda ends: 12, 0
    for k in range(len(CHUNKS) - 1):
        yield f"after chunk {k + 1}", lambda ends, k=k: ends[k], k + 1
        yield f"next record header only {k + 1}", lambda ends, k=k: ends[k] + 9, k + 1
        yield f"inside chunk {k + 2}", lambda ends, k=k: (ends[k] + ends[k + 1]) // 2, k + 1


@pytest.mark.parametrize(("cut", "kept"), [c[1:] for c in _cases()], ids=[c[0] for c in _cases()])
def test_truncated_bag_reads_up_to_its_last_complete_chunk(chunked, tmp_path, cut, kept):
    src, ends, sent = chunked
    bag = _cut(src, tmp_path / "cut", cut(ends))
    want = sent[: sum(CHUNKS[:kept])]

    report = reindex_bag(bag)

    assert not report.complete and report.messages == len(want)
    got = [(r.topic, r.stamp_ns) for r in read_bag(bag)]
    assert got == want
    assert (bag / "cut.mcap.orig").is_file()  # the damaged file is kept beside
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["message_count"] == len(want) and meta["storage_identifier"] == "mcap"
    assert meta["relative_file_paths"] == ["cut.mcap"]


def test_repaired_bag_keeps_messages_types_hashes_and_qos(chunked, tmp_path):
    src, ends, sent = chunked
    bag = _cut(src, tmp_path / "cut", (ends[-2] + ends[-1]) // 2)
    reindex_bag(bag)
    records = list(read_bag(bag))
    images = [r.deserialize() for r in records if r.topic == "/us/image"]
    assert [bytes(m.data) for m in images] == [
        bytes(_image(s - 1000).data) for t, s in sent[: len(records)] if t == "/us/image"
    ]
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    store = typestore()
    for t in meta["topics_with_message_count"]:
        topic = t["topic_metadata"]
        assert topic["type_description_hash"] == store.hash_rihs01(topic["type"])


def test_closed_bag_is_rewritten_whole(chunked, tmp_path):
    src, _, sent = chunked
    report = reindex_bag(src, tmp_path / "copy")
    assert report.complete and report.messages == len(sent)
    assert report.original is None and next(src.glob("*.mcap")).is_file()
    assert [(r.topic, r.stamp_ns) for r in read_bag(tmp_path / "copy")] == sent


def test_flush_puts_every_written_message_into_the_file(tmp_path):
    """What a kill -9 leaves: the file as it is, never closed; BagWriter.flush bounds the loss
    (pins rosbags' McapWriter internals that flush uses)."""
    w = BagWriter(tmp_path / "live").__enter__()
    for i in range(7):
        w.write("/lbr/joint_states", _joints(i), 1000 + i)
    w.flush()
    for i in range(7, 10):
        w.write("/lbr/joint_states", _joints(i), 1000 + i)  # in memory only
    assert (w.count, w.flushed) == (10, 7)
    killed = shutil.copytree(tmp_path / "live", tmp_path / "killed")
    assert not (killed / "metadata.yaml").exists()
    end = ScanEnd()
    n = sum(1 for r in scan_mcap(killed / "live.mcap", end) if hasattr(r, "log_time_ns"))
    assert n == 7 and not end.complete
    w.__exit__(None, None, None)


def test_corrupt_chunk_ends_the_scan_before_it(chunked, tmp_path):
    src, ends, _ = chunked
    bag = _cut(src, tmp_path / "bad", ends[-1])
    mcap = bag / "bad.mcap"
    data = bytearray(mcap.read_bytes())
    data[ends[1]] = 0  # the third chunk's opcode
    mcap.write_bytes(bytes(data))
    report = reindex_bag(bag)
    assert report.messages == sum(CHUNKS[:2]) and "invalid opcode 0" in report.reason


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"is not an MCAP file: expected the magic .* got b''"),
        (b"SQLite format 3\x00" + b"\x00" * 64, r"is not an MCAP file: expected the magic"),
    ],
)
def test_not_mcap_is_a_clear_error(tmp_path, content, match):
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "bag.mcap").write_bytes(content)
    with pytest.raises(ValueError, match=match):
        reindex_bag(bag)


def test_folder_without_one_mcap_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"expected one .mcap file in .*, found \[\]"):
        reindex_bag(tmp_path)
    with pytest.raises(ValueError, match="expected a rosbag2 bag folder"):
        reindex_bag(tmp_path / "missing")


def test_cli_prints_the_report_and_fails_in_one_line(chunked, tmp_path, capsys):
    from usx_model.cli.main import main

    src, ends, _ = chunked
    bag = _cut(src, tmp_path / "cut", ends[0] + 9)
    assert main(["bag", "reindex", str(bag)]) == 0
    assert json.loads(capsys.readouterr().out)["messages"] == CHUNKS[0]
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk.mcap").write_bytes(b"junk")
    assert main(["bag", "reindex", str(tmp_path / "junk")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an MCAP file" in err


def test_chunks_rosbags_closes_itself_count_as_flushed(tmp_path):
    """rosbags closes a chunk past 1 MiB; the writer notices (its loss window is the lesser
    of flush_period_s and 1 MiB)."""
    big = Image(height=512, width=600, encoding="mono8", step=600, data=bytes(512 * 600))
    with BagWriter(tmp_path / "bag") as w:
        for i in range(5):
            w.write("/us/image", big, 1000 + i)
        # 4 x 307 kB passed 1 MiB: that chunk is in the file, the fifth image is not
        assert (w.count, w.flushed, w.unflushed_max) == (5, 4, 4)
        w.flush()
        assert (w.flushed, w.unflushed_max) == (5, 4)


def test_zstd_compressed_chunks_are_read(tmp_path):
    """ros2 bag record compresses chunks with zstd by default; rosbags can too."""
    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
    from rosbags.rosbag2.writer import StoragePlugin

    writer = Writer(tmp_path / "z", version=9, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        conn = writer.add_connection(
            "/lbr/joint_states", "sensor_msgs/msg/JointState", typestore=typestore()
        )
        for i in range(6):
            writer.write(conn, 1000 + i, serialize_message(_joints(i)))
    assert b"zstd" in (tmp_path / "z" / "z.mcap").read_bytes()
    (tmp_path / "z" / "metadata.yaml").unlink()
    report = reindex_bag(tmp_path / "z", tmp_path / "out")
    assert report.complete and report.messages == 6
    got = [r.deserialize().position[0] for r in read_bag(tmp_path / "out")]
    assert got == pytest.approx([0.01 * i for i in range(6)])
