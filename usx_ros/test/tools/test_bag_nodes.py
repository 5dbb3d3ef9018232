"""bag_record -> bag_replay round trip in-process, QoS choices and start-up errors."""

from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, String

from usx_msgs.msg import XrayView
from usx_ros.params import ParameterError
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.testing import spin_until
from usx_ros.tools.bag import BagWriter, read_bag
from usx_ros.tools.bag_record import BagRecorder, record_stamp, subscription_qos
from usx_ros.tools.bag_replay import BagReplayer, replay_qos

pytestmark = pytest.mark.ros

TOPICS = {
    "/t/image": (Image, SENSOR_QOS),
    "/t/joints": (JointState, STATE_QOS),
    "/usx/xray": (XrayView, RESULT_QOS),
}


def _messages() -> list[tuple[str, object]]:
    """Interleaved test traffic: 4 images, 8 joint states, 1 X-ray."""
    out = []
    for k in range(8):
        joints = JointState(name=["a", "b"], position=[0.1 * k, -0.2 * k])
        joints.header.stamp.sec = k
        out.append(("/t/joints", joints))
        if k % 2 == 0:
            img = Image(height=2, width=3, encoding="mono8", step=3, data=bytes(range(k, k + 6)))
            img.header.stamp.nanosec = k
            out.append(("/t/image", img))
        if k == 3:
            xray = XrayView(pixel_spacing=0.0005, depth_registered=True)
            xray.header.frame_id = "lbr_link_0"
            xray.image = Image(height=1, width=1, encoding="mono16", step=2, data=b"\x01\x02")
            out.append(("/usx/xray", xray))
    return out


def _executor(context, *nodes) -> SingleThreadedExecutor:
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    return executor


def _record(ros_context, ros_node, path, stamp: str):
    """A bag recorded by BagRecorder from live publishers, and what was sent."""
    pubs = {t: ros_node.create_publisher(cls, t, qos) for t, (cls, qos) in TOPICS.items()}
    recorder = BagRecorder(
        context=ros_context,
        parameter_overrides=[
            Parameter("output", value=str(path)),
            Parameter("topics", value=list(TOPICS)),
            Parameter("discovery_period_s", value=0.05),
            Parameter("stamp", value=stamp),
        ],
    )
    executor = _executor(ros_context, recorder, ros_node)
    try:
        ready = spin_until(
            executor,
            lambda: (
                len(recorder.recording) == 3
                and all(p.get_subscription_count() for p in pubs.values())
            ),
            timeout_s=10.0,
        )
        assert ready, f"recorder found only {recorder.recording}"
        sent = _messages()
        for topic, msg in sent:  # all sent before the recorder takes any
            pubs[topic].publish(msg)
        assert spin_until(executor, lambda: recorder.count == len(sent), timeout_s=10.0)
        recorder.close()
    finally:
        executor.shutdown()
        recorder.destroy_node()
        for pub in pubs.values():  # the latched X-ray must not reach the replay's subscribers
            ros_node.destroy_publisher(pub)
    return path, sent


@pytest.fixture
def recorded(ros_context, ros_node, tmp_path):
    """A bag recorded with the default (send-time) stamps, and what was sent."""
    return _record(ros_context, ros_node, tmp_path / "bag", "sent")


@pytest.mark.parametrize("stamp", ["sent", "received"])
def test_recorder_writes_the_received_bytes_with_wall_clock_stamps(
    ros_context, ros_node, tmp_path, stamp
):
    path, sent = _record(ros_context, ros_node, tmp_path / "bag", stamp)
    records = list(read_bag(path))
    assert len(records) == len(sent)
    for topic in TOPICS:  # every message, byte for byte, in order per topic
        mine = [r.deserialize() for r in records if r.topic == topic]
        assert mine == [m for t, m in sent if t == topic]
    stamps = [r.stamp_ns for r in records]
    assert stamps == sorted(stamps) and stamps[0] > 1e18  # wall clock, not header stamps
    assert {r.type_name for r in records} == {
        "sensor_msgs/msg/Image",
        "sensor_msgs/msg/JointState",
        "usx_msgs/msg/XrayView",
    }


def test_send_stamps_keep_the_publishers_order_across_topics(recorded):
    """The executor takes ready subscriptions in its own order, so receive times group
    the messages by topic; send times keep the order they were published in (a replay
    then delivers an image before the stop edge published after it)."""
    path, sent = recorded
    assert [r.topic for r in read_bag(path)] == [t for t, _ in sent]


def test_receive_stamps_follow_the_executor_not_the_publishers(ros_context, ros_node, tmp_path):
    """The counterpart that shows the send-order test can fail: with receive times the
    cross-topic order is the executor's."""
    path, sent = _record(ros_context, ros_node, tmp_path / "bag", "received")
    assert [r.topic for r in read_bag(path)] != [t for t, _ in sent]


@pytest.mark.parametrize(
    ("sent_ns", "received_ns", "since_ns", "want"),
    [
        (150, 200, 100, 150),  # the send time
        (200, 200, 100, 200),  # sent and received in the same ns
        (0, 200, 100, 200),  # no send time from the middleware: receive time
        (250, 200, 100, 200),  # sender's clock ahead: receive time
        (50, 200, 100, 100),  # latched, sent before the subscription: its creation
        (50, 200, 300, 200),  # ...but never after the receive time
    ],
)
def test_record_stamp(sent_ns, received_ns, since_ns, want):
    assert record_stamp(sent_ns, received_ns, since_ns) == want


def test_replay_as_fast_as_possible_delivers_identical_messages_in_order(recorded, ros_context):
    path, sent = recorded
    sink = rclpy.create_node("bag_replay_sink", context=ros_context)
    got: dict[str, list] = {t: [] for t in TOPICS}
    active: list[Bool] = []
    for topic, (cls, qos) in TOPICS.items():
        sink.create_subscription(cls, topic, got[topic].append, qos)
    sink.create_subscription(Bool, "/usx/replay/active", active.append, RESULT_QOS)
    replayer = BagReplayer(
        context=ros_context,
        parameter_overrides=[
            Parameter("bag", value=str(path)),
            Parameter("rate", value=0.0),
            Parameter("start_delay_s", value=0.0),
            Parameter("wait_for_subscribers", value=True),
        ],
    )
    executor = _executor(ros_context, replayer, sink)
    try:
        finished = spin_until(
            executor,
            lambda: replayer.done and sum(map(len, got.values())) == len(sent) and active,
            timeout_s=10.0,
        )
        assert finished, f"replayed {replayer.published}, received {[len(v) for v in got.values()]}"
        for topic in TOPICS:
            assert got[topic] == [m for t, m in sent if t == topic]
        assert active[-1].data is False and replayer.error is None
        qos = replayer.publishers_by_topic["/usx/xray"].qos_profile
        assert qos.durability == DurabilityPolicy.TRANSIENT_LOCAL
    finally:
        executor.shutdown()
        replayer.destroy_node()
        sink.destroy_node()


def test_replay_at_rate_keeps_the_recorded_spacing(ros_context, tmp_path):
    path = tmp_path / "timed"
    with BagWriter(path) as writer:
        for k in range(3):
            writer.write("/t/text", String(data=str(k)), 1_000_000_000 + k * 100_000_000)
    replayer = BagReplayer(
        context=ros_context,
        parameter_overrides=[
            Parameter("bag", value=str(path)),
            Parameter("rate", value=2.0),
            Parameter("start_delay_s", value=0.0),
        ],
    )
    try:
        start = time.monotonic()
        assert spin_until(replayer, lambda: replayer.done, timeout_s=5.0)
        # 200 ms of bag time at twice the speed: at least 100 ms of wall time
        assert time.monotonic() - start >= 0.1 and replayer.published == 3
    finally:
        replayer.destroy_node()


def _corrupt_storage(path):
    with BagWriter(path) as writer:
        writer.write("/t/text", String(data="x"), 1)
    for f in path.glob("*.mcap"):
        f.write_bytes(b"not an mcap file" * 4)


def _corrupt_metadata(path):
    path.mkdir()
    (path / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (None, "no metadata.yaml"),
        (_corrupt_metadata, "cannot open bag"),
        (_corrupt_storage, "cannot open bag|damaged"),
    ],
)
def test_missing_or_corrupt_bag_fails_at_startup(ros_context, tmp_path, damage, match):
    path = tmp_path / "bad"
    if damage is not None:
        damage(path)
    with pytest.raises(ParameterError, match=rf"parameter 'bag': .*({match})") as info:
        BagReplayer(context=ros_context, parameter_overrides=[Parameter("bag", value=str(path))])
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("node", "overrides", "match"),
    [
        (BagReplayer, {"bag": ""}, "'bag': expected a rosbag2 folder"),
        (BagReplayer, {"rate": -1.0}, "'rate'.*out of range"),
        (BagRecorder, {"output": ""}, "'output': expected a bag folder path"),
        (BagRecorder, {"output": "/"}, "'output': bag / already exists"),
        (BagRecorder, {"stamp": "header"}, r"'stamp': expected one of \['sent', 'received'\]"),
    ],
)
def test_invalid_parameter_fails_at_startup(ros_context, node, overrides, match):
    with pytest.raises(ParameterError, match=match):
        node(
            context=ros_context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )


def test_replay_of_an_unknown_topic_fails_at_startup(ros_context, tmp_path):
    path = tmp_path / "one"
    with BagWriter(path) as writer:
        writer.write("/t/text", String(data="x"), 1)
    with pytest.raises(ParameterError, match=r"has no topic\(s\) \['/nope'\]"):
        BagReplayer(
            context=ros_context,
            parameter_overrides=[
                Parameter("bag", value=str(path)),
                Parameter("topics", value=["/nope"]),
            ],
        )


@pytest.mark.parametrize(
    ("topic", "type_name", "want"),
    [
        ("/usx/xray", "usx_msgs/msg/XrayView", RESULT_QOS),
        ("/usx/phantom/ground_truth", "sensor_msgs/msg/PointCloud2", RESULT_QOS),
        ("/usx/completed_spine", "sensor_msgs/msg/PointCloud2", RESULT_QOS),
        ("/us/image", "sensor_msgs/msg/Image", SENSOR_QOS),
        ("/lbr/joint_states", "sensor_msgs/msg/JointState", STATE_QOS),
    ],
)
def test_replay_qos_by_topic_without_recorded_qos(topic, type_name, want):
    assert replay_qos(topic, type_name) == want


@pytest.mark.parametrize(
    ("offered", "reliability", "durability"),
    [
        ([], ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        ([SENSOR_QOS], ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
        ([RESULT_QOS], ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL),
        ([RESULT_QOS, STATE_QOS], ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE),
        ([STATE_QOS, SENSOR_QOS], ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE),
    ],
)
def test_recorder_qos_matches_every_publisher(offered, reliability, durability):
    qos: QoSProfile = subscription_qos(offered)
    assert (qos.reliability, qos.durability) == (reliability, durability)
