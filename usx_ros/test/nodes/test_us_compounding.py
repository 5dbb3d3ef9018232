"""us_compounding in-process: a sweep of synthetic frames -> bone points; bad inputs."""

from __future__ import annotations

import re

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Bool, Header
from std_srvs.srv import Trigger

from usx_msgs.msg import SweepCloud, SweepPoints, SweepReport
from usx_ros.conversions import (
    array_to_image,
    ns_to_stamp,
    transform_mm_to_pose,
    xyz_from_cloud_mm,
)
from usx_ros.nodes.us_compounding import UsCompounding
from usx_ros.params import ParameterError
from usx_ros.qos import LIVE_QOS, RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.testing import spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

MS = 1_000_000
ROWS, COLS, PX, BONE_ROW = 128, 64, 0.5, 60
BASE = [
    Parameter("rows", value=ROWS),
    Parameter("cols", value=COLS),
    Parameter("volume_min_mm", value=[-40.0, -40.0, -20.0]),
    Parameter("volume_max_mm", value=[40.0, 40.0, 80.0]),
    # These tests script the start before the poses; the start check has its own tests.
    Parameter("start_pose_max_age_s", value=0.0),
]


def _frame() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.integers(30, 60, size=(ROWS, COLS)).astype(np.uint8)
    img[BONE_ROW : BONE_ROW + 2] = 250
    img[BONE_ROW + 2 :] = rng.integers(0, 4, size=(ROWS - BONE_ROW - 2, COLS))
    return img


def _pose_msg(t_ns: int, T: np.ndarray | None = None) -> PoseStamped:
    msg = PoseStamped(header=Header(frame_id="lbr_link_0", stamp=ns_to_stamp(t_ns)))
    msg.pose = transform_mm_to_pose(np.eye(4) if T is None else T)
    return msg


def _image_msg(t_ns: int, image: np.ndarray | None = None, encoding: str = "mono8") -> Image:
    img = _frame() if image is None else image
    return array_to_image(img, encoding, Header(frame_id="us_image", stamp=ns_to_stamp(t_ns)))


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> list[Parameter]:
    """BASE + a probe calibration of PX mm pixels, centred on a COLS-wide image."""
    path = tmp_path_factory.mktemp("calibration") / "probe.yaml"
    cal = write_probe_calibration(path, spacing_mm=PX, width_px=COLS)
    return [*BASE, Parameter("probe_calibration", value=cal)]


class Harness:
    def __init__(self, ctx, ros_node, params, overrides=()):
        self.node = UsCompounding(context=ctx, parameter_overrides=[*params, *overrides])
        self.tester = ros_node
        self.points: list[PointCloud2] = []
        self.reports: list[SweepReport] = []
        self.arrivals: list[str] = []
        ros_node.create_subscription(PointCloud2, "/usx/bone_points", self._on_points, RESULT_QOS)
        self.sweep_points: list[SweepCloud] = []
        ros_node.create_subscription(
            SweepCloud, "/usx/sweep/bone_points", self.sweep_points.append, RESULT_QOS
        )
        ros_node.create_subscription(SweepReport, "/usx/sweep_report", self._on_report, RESULT_QOS)
        self.pose_pub = ros_node.create_publisher(PoseStamped, "/usx/probe_pose", STATE_QOS)
        self.img_pub = ros_node.create_publisher(Image, "/us/image", SENSOR_QOS)
        self.start = ros_node.create_client(Trigger, "/usx/sweep/start")
        self.stop = ros_node.create_client(Trigger, "/usx/sweep/stop")
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(ros_node)
        assert spin_until(
            self.ex,
            lambda: self.img_pub.get_subscription_count() > 0 and self.start.service_is_ready(),
            timeout_s=5.0,
        )

    def _on_points(self, msg: PointCloud2) -> None:
        self.points.append(msg)
        self.arrivals.append("bone_points")

    def _on_report(self, msg: SweepReport) -> None:
        self.reports.append(msg)
        self.arrivals.append("sweep_report")

    def call(self, client) -> Trigger.Response:
        future = client.call_async(Trigger.Request())
        assert spin_until(self.ex, future.done, timeout_s=5.0)
        return future.result()

    def stream(self, n: int, t0_ms: int = 0) -> None:
        poses = self.node.sweep.sweep.poses
        want_poses = poses.accepted_poses + n
        for i in range(n):
            self.pose_pub.publish(_pose_msg((t0_ms + 10 * i) * MS))
        assert spin_until(self.ex, lambda: poses.accepted_poses >= want_poses, 5.0)
        for i in range(n - 1):
            want = self.node.health.accepted + 1
            self.img_pub.publish(_image_msg((t0_ms + 10 * i + 5) * MS))
            assert spin_until(self.ex, lambda w=want: self.node.health.accepted >= w, 5.0)

    def close(self):
        self.ex.shutdown()
        self.node.destroy_node()


@pytest.fixture
def harness(ros_context, ros_node, params, request):
    h = Harness(ros_context, ros_node, params, getattr(request, "param", ()))
    yield h
    h.close()


@pytest.mark.parametrize(
    ("harness", "voxel_mm"),
    [
        ([Parameter("bone_points_voxel_mm", value=0.0)], 0.0),
        ((), 1.0),
        ([Parameter("bone_points_voxel_mm", value=2.0)], 2.0),
    ],
    indirect=["harness"],
    ids=["every_pixel", "default_1mm", "2mm"],
)
def test_sweep_publishes_bone_points_at_the_echo_depth(harness, voxel_mm):
    assert harness.call(harness.start).success
    harness.stream(6)
    assert harness.node.health.accepted == 5
    resp = harness.call(harness.stop)
    assert resp.success and "5 frames placed" in resp.message
    assert spin_until(harness.ex, lambda: harness.points, timeout_s=5.0)
    cloud = harness.points[-1]
    assert cloud.header.frame_id == "lbr_link_0"
    pts = xyz_from_cloud_mm(cloud)
    # five frames at one pose: a two-pixel bone line, COLS * PX = 32 mm wide
    if voxel_mm == 0.0:
        assert len(pts) > 5 * COLS // 2
    else:
        keys = np.floor(pts / voxel_mm).astype(int)
        assert len(np.unique(keys, axis=0)) == len(pts)  # one point per voxel
        assert COLS * PX / voxel_mm <= len(pts) <= 3 * (COLS * PX / voxel_mm + 2)
    np.testing.assert_allclose(np.median(pts[:, 2]), (BONE_ROW + 0.5) * PX, atol=0.3 + voxel_mm)
    assert not harness.call(harness.stop).success  # nothing to stop any more
    # the sweep's frame accounting, stamped like its bone points
    assert sorted(harness.arrivals) == ["bone_points", "sweep_report"]
    report = harness.reports[-1]
    assert report.header.stamp == cloud.header.stamp
    # a sweep started by service is named by the node; its clouds and report carry the id
    assert spin_until(harness.ex, lambda: harness.sweep_points, timeout_s=5.0)
    named = harness.sweep_points[-1]
    assert re.fullmatch(r"us_compounding-\d+-1", named.sweep_id), named.sweep_id
    assert report.sweep_id == named.sweep_id
    assert named.final and bytes(named.cloud.data) == bytes(cloud.data)
    assert 0 < report.sweep_end.sec <= cloud.header.stamp.sec  # stopped before it closed
    assert (report.frames_expected, report.frames_placed, report.frames_lost) == (5, 5, 0)


@pytest.mark.parametrize(
    ("harness", "closing"),
    [((), True), ([Parameter("breathing_compensation", value=False)], False)],
    indirect=["harness"],
    ids=["breathing_fit", "no_breathing_fit"],
)
def test_a_stopped_sweeps_points_go_out_before_the_breathing_fit(harness, ros_node, closing):
    """With the breathing fit, all the stopped sweep's points go out first (``closing``,
    for the X-ray placement meanwhile): the same cloud as the final one when the fit moves
    nothing (five frames at one pose)."""
    live: list[SweepPoints] = []
    ros_node.create_subscription(SweepPoints, "/usx/sweep/live_points", live.append, LIVE_QOS)
    assert harness.call(harness.start).success
    harness.stream(6)
    assert harness.call(harness.stop).success
    assert spin_until(harness.ex, lambda: harness.sweep_points, timeout_s=5.0)
    spin_until(harness.ex, lambda: live, timeout_s=0.5)  # bounded: it came first if at all
    final = harness.sweep_points[-1]
    if not closing:
        assert live == []
        return
    assert [(m.sweep_id, m.closing, m.sequence, m.discarded) for m in live] == [
        (final.sweep_id, True, 0, False)
    ]
    assert bytes(live[0].cloud.data) == bytes(final.cloud.data)
    assert harness.node.status()["breathing"]["applied"] is False


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda: _image_msg(25 * MS, encoding="mono16"), "invalid_image"),
        (lambda: _image_msg(25 * MS, image=np.zeros((ROWS, COLS + 2), np.uint8)), "invalid_image"),
        (lambda: _image_msg(1 * MS), "out_of_order"),
        (lambda: _image_msg(3600 * 1000 * MS), "stamp_jump"),  # an hour ahead: not adopted
    ],
)
def test_bad_images_are_counted_and_the_sweep_goes_on(harness, bad, reason):
    harness.call(harness.start)
    harness.stream(3)
    harness.img_pub.publish(bad())
    assert spin_until(harness.ex, lambda: harness.node.health.counts[reason] == 1, 5.0)
    harness.stream(3, t0_ms=100)
    assert harness.node.health.accepted == 4
    # the refused frame counts against the sweep (so does the 90 ms gap in the stream)
    assert harness.node.session.frames_rejected == 1
    loss = harness.node.session.frame_loss()
    assert loss.placed == 4 and loss.lost >= 1


def _bad_quat_pose(t_ns):
    msg = _pose_msg(t_ns)
    msg.pose.orientation.w = 2.0
    return msg


def _nan_pose(t_ns):
    msg = _pose_msg(t_ns)
    msg.pose.position.x = float("nan")
    return msg


@pytest.mark.parametrize(
    ("bad", "reason"),
    [(_bad_quat_pose, "invalid_pose"), (_nan_pose, "invalid_pose"), (_pose_msg, "out_of_order")],
)
def test_bad_poses_are_counted(harness, bad, reason):
    harness.call(harness.start)
    harness.stream(3)
    harness.pose_pub.publish(bad(1 * MS))
    assert spin_until(harness.ex, lambda: harness.node.health.counts[reason] == 1, 5.0)


def test_a_frame_at_the_sweep_start_uses_the_poses_before_the_start(harness):
    # A replay delivers the first poses before the sweep-start edge (another topic).
    poses = harness.node.sweep.sweep.poses
    for t_ms in (0, 10):
        harness.pose_pub.publish(_pose_msg(t_ms * MS))
    assert spin_until(harness.ex, lambda: poses.accepted_poses == 2, 5.0)
    harness.call(harness.start)
    harness.img_pub.publish(_image_msg(5 * MS))
    assert spin_until(harness.ex, lambda: harness.node.health.accepted == 1, 5.0)
    assert harness.node.status()["frames_dropped"] == 0


LIVE = [Parameter("start_pose_max_age_s", value=0.3)]


@pytest.mark.parametrize("harness", [LIVE], indirect=True, ids=["max_age_0.3s"])
def test_start_is_refused_until_the_pose_stream_is_live(harness):
    refused = harness.call(harness.start)
    assert not refused.success and not harness.node.active
    assert refused.message == (
        "sweep not started: no probe pose on /usx/probe_pose within 0.3 s (none yet): "
        "is the probe tracker running?"
    )
    poses = harness.node.sweep.sweep.poses
    harness.pose_pub.publish(_pose_msg(0))
    assert spin_until(harness.ex, lambda: poses.accepted_poses == 1, 5.0)
    accepted = harness.call(harness.start)
    assert accepted.success and harness.node.active
    assert re.fullmatch(r"sweep 'us_compounding-\d+-1' started", accepted.message)
    assert harness.call(harness.stop).success
    spin_until(harness.ex, lambda: False, timeout_s=0.4)  # the pose grows older than 0.3 s
    stale = harness.call(harness.start)
    assert not stale.success and not harness.node.active
    assert "within 0.3 s (the last 0." in stale.message


def test_start_is_refused_while_no_image_publisher_has_matched(ros_context, ros_node, params):
    node = UsCompounding(context=ros_context, parameter_overrides=[*params, *LIVE])
    pose_pub = ros_node.create_publisher(PoseStamped, "/usx/probe_pose", STATE_QOS)
    start = ros_node.create_client(Trigger, "/usx/sweep/start")
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(ros_node)
    try:
        assert spin_until(ex, lambda: pose_pub.get_subscription_count() > 0, 5.0)
        pose_pub.publish(_pose_msg(0))
        assert spin_until(ex, lambda: node.sweep.sweep.poses.accepted_poses == 1, 5.0)
        future = start.call_async(Trigger.Request())
        assert spin_until(ex, future.done, timeout_s=5.0)
        assert not future.result().success and not node.active
        assert future.result().message == (
            "sweep not started: no publisher on /us/image has matched this node yet"
        )
    finally:
        ex.shutdown()
        node.destroy_node()


def _closed(harness) -> dict:
    assert spin_until(harness.ex, lambda: harness.points, timeout_s=5.0)
    return harness.node.status()


@pytest.mark.parametrize(
    "harness", [[Parameter("stop_settle_s", value=1.0)]], indirect=True, ids=["settle_1s"]
)
def test_a_frame_in_flight_at_the_stop_still_belongs_to_the_sweep(harness):
    harness.call(harness.start)
    harness.stream(3)  # poses at 0, 10, 20 ms; frames at 5, 15 ms
    harness.call(harness.stop)
    harness.img_pub.publish(_image_msg(60_000 * MS))  # acquired a minute after the stop
    harness.img_pub.publish(_image_msg(25 * MS))  # acquired before it, arrived after
    harness.pose_pub.publish(_pose_msg(30 * MS))
    assert spin_until(harness.ex, lambda: harness.node.health.accepted == 3, 5.0)
    status = _closed(harness)
    assert status["frames_placed"] == 3 and status["frames_dropped"] == 0
    assert status["frames_after_stop"] == 1 and status["rejected_input"] == {}


@pytest.mark.parametrize(
    ("harness", "poses_after_stop", "placed", "no_pose"),
    [
        ([Parameter("stop_grace_s", value=0.3), Parameter("stop_settle_s", value=0.0)], 8, 3, 0),
        ([Parameter("stop_grace_s", value=0.3), Parameter("stop_settle_s", value=0.0)], 0, 1, 2),
    ],
    indirect=["harness"],
    ids=["tracker_lagging", "pose_stream_ended"],
)
def test_held_frames_wait_while_poses_still_arrive(harness, poses_after_stop, placed, no_pose):
    harness.call(harness.start)
    harness.stream(2)  # poses at 0, 10 ms; frame at 5 ms placed
    for t_ms in (15, 25):  # newer than every pose: held
        harness.img_pub.publish(_image_msg(t_ms * MS))
    assert spin_until(harness.ex, lambda: harness.node.sweep.pending == 2, 5.0)
    harness.call(harness.stop)
    # A lagging tracker: poses keep coming, 0.15 s apart, for 1.2 s (4x the grace).
    for i in range(poses_after_stop):
        harness.pose_pub.publish(_pose_msg((11 + i) * MS))
        closed = spin_until(harness.ex, lambda: harness.points, timeout_s=0.15)
        assert not closed, "the sweep closed while poses were still arriving"
    if poses_after_stop:
        harness.pose_pub.publish(_pose_msg(30 * MS))  # the tracker caught up
    status = _closed(harness)
    assert status["frames_placed"] == placed
    assert status["drops_by_reason"] == ({"no_pose": no_pose} if no_pose else {})


def test_a_volume_over_budget_fails_at_startup(ros_context):
    huge = [
        Parameter("volume_min_mm", value=[0.0, 0.0, 0.0]),
        Parameter("volume_max_mm", value=[2000.0, 2000.0, 2000.0]),
        Parameter("voxel_mm", value=0.5),
    ]
    with pytest.raises(ParameterError, match=r"compounding volume: .*budget"):
        UsCompounding(context=ros_context, parameter_overrides=huge)


def test_sweep_source_topic_starts_and_stops_on_the_edges(ros_context, ros_node, params):
    # A replayed bag holds no service calls: the recorded sweep state frames the sweep.
    node = UsCompounding(
        context=ros_context,
        parameter_overrides=[*params, Parameter("sweep_source", value="topic")],
    )
    active = ros_node.create_publisher(Bool, "/usx/sweep/active", RESULT_QOS)
    start = ros_node.create_client(Trigger, "/usx/sweep/start")
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(ros_node)
    try:
        assert spin_until(ex, lambda: active.get_subscription_count() > 0, 5.0)
        active.publish(Bool(data=True))
        assert spin_until(ex, lambda: node.active, 5.0)
        active.publish(Bool(data=False))
        assert spin_until(ex, lambda: node.sweeps_completed == 1, 5.0)
        assert not start.service_is_ready()  # the services are not offered
    finally:
        ex.shutdown()
        node.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [Parameter("cols", value=COLS // 4)],
            r"'probe_calibration': image origin column 31.5 lies outside the 16-column image",
        ),
        (
            [Parameter("probe_calibration", value="/nonexistent/probe.yaml")],
            r"'probe_calibration': no such file '/nonexistent/probe.yaml'",
        ),
        ([Parameter("sweep_source", value="both")], r"expected one of \['service', 'topic'\]"),
    ],
    ids=["calibration_for_a_wider_image", "missing_calibration", "bad_sweep_source"],
)
def test_bad_startup_parameters_fail_with_one_line(ros_context, params, overrides, message):
    with pytest.raises(ParameterError, match=message):
        UsCompounding(context=ros_context, parameter_overrides=[*params, *overrides])
