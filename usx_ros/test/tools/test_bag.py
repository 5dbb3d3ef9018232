"""rosbag2 MCAP round trips through rosbags, for standard and usx_msgs types."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from usx_msgs.msg import SpineCompletion, VertebraCompletion
from usx_ros.conversions import points_mm_to_cloud
from usx_ros.tools.bag import BagWriter, message_class, read_bag

pytestmark = pytest.mark.ros


def _image(i: int) -> Image:
    img = Image(height=2, width=3, encoding="mono8", step=3)
    img.header.frame_id = "us_image"
    img.data = bytes(range(i, i + 6))
    return img


def test_round_trip_preserves_messages_and_order(tmp_path):
    spine = SpineCompletion(model_id="m")
    spine.vertebrae.append(
        VertebraCompletion(
            level="L3", cloud=points_mm_to_cloud(np.eye(3), Header(frame_id="lbr_link_0"))
        )
    )
    with BagWriter(tmp_path / "bag") as bag:
        for i in range(5):
            bag.write("/us/image", _image(i), stamp_ns=1000 + i)
        bag.write("/usx/completion", spine, stamp_ns=1002)
    meta = yaml.safe_load((tmp_path / "bag" / "metadata.yaml").read_text())
    assert meta["rosbag2_bagfile_information"]["storage_identifier"] == "mcap"
    assert meta["rosbag2_bagfile_information"]["version"] == 9

    records = list(read_bag(tmp_path / "bag"))
    assert [r.stamp_ns for r in records] == sorted(r.stamp_ns for r in records)
    images = [r.deserialize() for r in records if r.topic == "/us/image"]
    assert [bytes(m.data) for m in images] == [bytes(_image(i).data) for i in range(5)]
    (back,) = [r.deserialize() for r in records if r.topic == "/usx/completion"]
    assert back == spine


def test_topic_filter(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        bag.write("/a", _image(0), 1)
        bag.write("/b", _image(1), 2)
    assert [r.topic for r in read_bag(tmp_path / "bag", topics=["/b"])] == ["/b"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "metadata.yaml").unlink(), "not a rosbag2 folder"),
        (lambda p: (p / "metadata.yaml").write_text("{not: [valid"), "cannot open bag"),
        (lambda p: next(p.glob("*.mcap")).write_bytes(b"\x89MCAP0\r\n" + b"\0" * 64), "bag"),
    ],
)
def test_corrupt_bags_give_clear_errors(tmp_path, damage, message):
    with BagWriter(tmp_path / "bag") as bag:
        bag.write("/a", _image(0), 1)
    damage(tmp_path / "bag")
    with pytest.raises(ValueError, match=message):
        list(read_bag(tmp_path / "bag"))


def test_writer_refuses_to_overwrite(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(ValueError, match="already exists"):
        BagWriter(tmp_path / "bag")


@pytest.mark.parametrize("name", ["Image", "sensor_msgs/Image", "nope_msgs/msg/Nothing"])
def test_bad_type_names(name):
    with pytest.raises(ValueError):
        message_class(name)
