"""The RecordSweep action against a real us_compounding node: goals, feedback, results,
refusals, cancel, a vanished client, the stop service and the duration."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from usx_msgs.action import RecordSweep
from usx_msgs.msg import SweepReport
from usx_ros.conversions import array_to_image, ns_to_stamp, transform_mm_to_pose
from usx_ros.nodes.us_compounding import UsCompounding
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.sweep_action import ACTION_NAME
from usx_ros.testing import spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

MS = 1_000_000
ROWS, COLS, PX = 96, 48, 0.5


def _image(t_ns: int) -> Image:
    rng = np.random.default_rng(0)
    img = rng.integers(30, 60, size=(ROWS, COLS)).astype(np.uint8)
    img[40:42] = 250  # a bright echo: bone
    img[42:] = rng.integers(0, 4, size=(ROWS - 42, COLS))  # its shadow
    return array_to_image(img, "mono8", Header(frame_id="us_image", stamp=ns_to_stamp(t_ns)))


def _pose(t_ns: int, z_mm: float) -> PoseStamped:
    T = np.eye(4)
    T[2, 3] = z_mm
    msg = PoseStamped(header=Header(frame_id="lbr_link_0", stamp=ns_to_stamp(t_ns)))
    msg.pose = transform_mm_to_pose(T)
    return msg


class Rig:
    """A us_compounding node, a client node with the action client, one executor."""

    def __init__(self, ctx, tmp_path, overrides=()) -> None:
        cal = write_probe_calibration(tmp_path / "probe.yaml", spacing_mm=PX, width_px=COLS)
        params = {
            "rows": ROWS,
            "cols": COLS,
            "volume_min_mm": [-40.0, -40.0, -20.0],
            "volume_max_mm": [40.0, 40.0, 80.0],
            "probe_calibration": cal,
            "start_pose_max_age_s": 0.0,
            **dict(overrides),
        }
        self.node = UsCompounding(
            context=ctx, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]
        )
        self.client_node = rclpy.create_node("sweep_client", context=ctx)
        n = self.client_node
        self.client = ActionClient(n, RecordSweep, ACTION_NAME)
        self.stop = n.create_client(Trigger, "/usx/sweep/stop")
        self.reset = n.create_client(Trigger, "/usx/sweep/reset")
        self.points: list[PointCloud2] = []
        self.reports: list[SweepReport] = []
        n.create_subscription(PointCloud2, "/usx/bone_points", self.points.append, RESULT_QOS)
        n.create_subscription(SweepReport, "/usx/sweep_report", self.reports.append, RESULT_QOS)
        self.pose_pub = n.create_publisher(PoseStamped, "/usx/probe_pose", STATE_QOS)
        self.img_pub = n.create_publisher(Image, "/us/image", SENSOR_QOS)
        self.feedback: list = []
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(n)
        assert spin_until(
            self.ex,
            lambda: self.client.server_is_ready() and self.img_pub.get_subscription_count() > 0,
            timeout_s=5.0,
        )

    def send(self, sweep_id: str, levels=(), duration_s: float = 0.0):
        goal = RecordSweep.Goal(sweep_id=sweep_id, levels=list(levels), duration_s=duration_s)
        future = self.client.send_goal_async(goal, feedback_callback=self.feedback.append)
        assert spin_until(self.ex, future.done, timeout_s=5.0)
        return future.result()

    def result(self, handle, timeout_s: float = 10.0):
        future = handle.get_result_async()
        assert spin_until(self.ex, future.done, timeout_s=timeout_s)
        return future.result()

    def call(self, client) -> Trigger.Response:
        future = client.call_async(Trigger.Request())
        assert spin_until(self.ex, future.done, timeout_s=5.0)
        return future.result()

    def stream(self, n: int, t0_ms: int = 0, step_mm: float = 0.5) -> None:
        """n poses 10 ms apart moving ``step_mm`` each, and a frame between each pair."""
        poses = self.node.sweep.sweep.poses
        want = poses.accepted_poses + n
        for i in range(n):
            self.pose_pub.publish(_pose((t0_ms + 10 * i) * MS, i * step_mm))
        assert spin_until(self.ex, lambda: poses.accepted_poses >= want, 5.0)
        for i in range(n - 1):
            placed = self.node.health.accepted + 1
            self.img_pub.publish(_image((t0_ms + 10 * i + 5) * MS))
            assert spin_until(self.ex, lambda w=placed: self.node.health.accepted >= w, 5.0)

    def close(self) -> None:
        # destroy_node leaves an action client's entities to the garbage collector: a
        # lingering feedback reader would hide the next test's vanished client
        self.client.destroy()
        self.ex.shutdown()
        self.node.destroy_node()
        self.client_node.destroy_node()


@pytest.fixture
def rig(ros_context, tmp_path, request):
    r = Rig(ros_context, tmp_path, getattr(request, "param", ()))
    yield r
    r.close()


def test_a_goal_records_a_sweep_with_feedback_and_a_result(rig) -> None:
    handle = rig.send("sweep-1", ["L1", "L2"])
    assert handle.accepted
    assert spin_until(rig.ex, lambda: rig.feedback, timeout_s=5.0)  # at once, on start
    assert rig.feedback[0].feedback.sweep_id == "sweep-1"
    assert rig.feedback[0].feedback.state == "recording"
    rig.stream(6)
    assert spin_until(rig.ex, lambda: rig.feedback[-1].feedback.frames_placed == 5, timeout_s=5.0)
    fb = rig.feedback[-1].feedback
    assert fb.frame_spacing_mm == pytest.approx(0.5, abs=1e-6)
    assert fb.probe_speed_mm_s == pytest.approx(50.0, rel=1e-6) and list(fb.warnings) == []
    stop = rig.call(rig.stop)  # duration 0: the stop service ends it
    assert stop.success
    res = rig.result(handle)
    assert res.status == 4  # GoalStatus.STATUS_SUCCEEDED
    r = res.result
    assert (r.success, r.outcome) == (True, "succeeded")
    assert r.report.sweep_id == "sweep-1" and r.report.frames_placed == 5
    assert r.bone_points > 0 and "5 frames placed" in r.message
    assert spin_until(rig.ex, lambda: rig.reports and rig.points, timeout_s=5.0)
    assert rig.reports[-1].sweep_id == "sweep-1"


def test_a_goal_with_a_duration_stops_by_itself(rig) -> None:
    # Longer than the stream takes even when the node is slow at first (a fresh clone's
    # CI: the 0.3 s timer fired 1.3 s after the start), so all three frames come inside.
    handle = rig.send("timed", duration_s=4.0)
    rig.stream(4)
    res = rig.result(handle)
    assert res.result.outcome == "succeeded" and res.result.report.frames_placed == 3
    assert rig.node.sweeps_completed == 1


@pytest.mark.parametrize(
    ("goal", "message"),
    [
        (("", (), 0.0), "invalid sweep_id ''"),
        (("s", ("L6",), 0.0), "unknown levels ['L6']: expected some of ['L1',"),
        (("s", (), -2.0), "duration_s -2.0: expected 0 (until stopped) to 600 s"),
    ],
)
def test_a_bad_goal_is_refused_with_the_reason(rig, goal, message) -> None:
    res = rig.result(rig.send(*goal))
    assert res.status == 6  # aborted at once
    assert (res.result.success, res.result.outcome) == (False, "refused")
    assert message in res.result.message
    assert not rig.node.active and rig.node.sweeps.refusals == 1


def test_a_second_goal_and_a_reused_id_are_refused_and_the_sweep_runs_on(rig) -> None:
    first = rig.send("a")
    second = rig.result(rig.send("b"))
    assert second.result.outcome == "refused"
    assert "sweep 'a' is recording: cancel it or wait" in second.result.message
    assert rig.node.active
    rig.stream(3)
    rig.call(rig.stop)
    assert rig.result(first).result.outcome == "succeeded"
    again = rig.result(rig.send("a"))
    assert "sweep_id 'a' was used before" in again.result.message


def test_a_goal_while_a_service_sweep_runs_is_refused(rig) -> None:
    start = rig.client_node.create_client(Trigger, "/usx/sweep/start")
    assert rig.call(start).success
    res = rig.result(rig.send("g"))
    assert "a sweep started by /usx/sweep/start is still recording" in res.result.message


def test_streams_not_live_refuse_the_goal(ros_context, tmp_path) -> None:
    rig = Rig(ros_context, tmp_path, {"start_pose_max_age_s": 1.0})
    try:
        res = rig.result(rig.send("early"))
        assert res.result.outcome == "refused"
        assert "sweep 'early' not started: no probe pose on /usx/probe_pose" in res.result.message
    finally:
        rig.close()


def test_a_cancelled_sweep_publishes_nothing(rig) -> None:
    handle = rig.send("c")
    rig.stream(4)
    cancel = handle.cancel_goal_async()
    assert spin_until(rig.ex, cancel.done, timeout_s=5.0)
    assert len(cancel.result().goals_canceling) == 1
    res = rig.result(handle)
    assert res.status == 5  # canceled
    assert res.result.outcome == "cancelled" and "3 placed frames discarded" in res.result.message
    assert not rig.node.active and rig.node.session.closing is None
    spin_until(rig.ex, lambda: rig.points, timeout_s=0.5)
    assert rig.points == [] and rig.reports == [] and rig.node.sweeps_completed == 0
    assert rig.send("d").accepted
    assert spin_until(rig.ex, lambda: rig.node.active, timeout_s=5.0)  # the next goal starts


def test_a_client_that_vanishes_aborts_its_sweep(ros_context, tmp_path) -> None:
    rig = Rig(ros_context, tmp_path, {"client_lost_s": 0.3, "feedback_period_s": 0.05})
    try:
        assert rig.send("lost").accepted
        rig.stream(3)
        rig.client.destroy()  # its feedback subscription goes with it
        rig.client = ActionClient(rig.client_node, RecordSweep, "/unrelated")  # for close()
        assert spin_until(rig.ex, lambda: not rig.node.active, timeout_s=5.0)
        assert spin_until(rig.ex, lambda: rig.node.sweeps.protocol.goal is None, timeout_s=5.0)
        spin_until(rig.ex, lambda: rig.points, timeout_s=0.3)
        assert rig.points == [] and rig.node.sweeps_completed == 0
    finally:
        rig.close()


def test_reset_and_deactivate_abort_the_goal(rig) -> None:
    handle = rig.send("r")
    assert rig.call(rig.reset).success
    res = rig.result(handle)
    assert res.result.outcome == "aborted" and "discarded by /usx/sweep/reset" in res.result.message
    handle = rig.send("s")
    rig.node.trigger_deactivate()
    res = rig.result(handle)
    assert "us_compounding deactivated" in res.result.message
    late = rig.send("t")  # an inactive node rejects goals outright
    assert not late.accepted


@pytest.mark.parametrize("rig", [{"max_frame_spacing_mm": 1.0}], indirect=True)
def test_a_fast_probe_is_warned_about(rig) -> None:
    rig.send("fast")
    rig.stream(8, step_mm=3.0)  # 3 mm in 10 ms
    assert spin_until(rig.ex, lambda: rig.feedback[-1].feedback.warnings, timeout_s=5.0)
    assert (
        "probe too fast for the frame rate: 3.0 mm between frames at 300 mm/s"
        in (rig.feedback[-1].feedback.warnings[0])
    )


def _sweep_through_l3(rig, sweep_id: str):
    """An X-ray of phantom 3 in the base frame, then a goal's sweep of 7 frames over L3's
    band; its level bands and the goal's handle."""
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.sim.xray import body_midplane_point_mm, lateral_geometry, render_lateral_xray
    from usx_msgs.msg import XrayView
    from usx_ros.conversions import xray_view_to_msg

    spine = generate_spine(3)  # its frame is the base frame here: L1..L5 along +z
    geometry = lateral_geometry(spine, pixel_mm=1.0)
    shot = render_lateral_xray(spine, geometry)
    header = Header(frame_id="lbr_link_0")
    msg = xray_view_to_msg(geometry, shot.image, shot.label, header, body_midplane_point_mm(spine))
    rig.client_node.create_publisher(XrayView, "/usx/xray", RESULT_QOS).publish(msg)
    assert spin_until(rig.ex, lambda: rig.node.level_bands() is not None, timeout_s=5.0)
    bands = rig.node.level_bands()
    lo, hi = bands.bands[3]
    z0 = float((bands.origin_mm + bands.axis * (lo + hi) / 2)[2])  # sweep through L3's band

    handle = rig.send(sweep_id, ["L3"])
    poses = rig.node.sweep.sweep.poses
    for i in range(8):
        T = np.eye(4)
        T[:3, 3] = [bands.origin_mm[0] - 12.0, bands.origin_mm[1] + 20.0, z0 + 2.0 * i]
        msg_pose = PoseStamped(header=Header(frame_id="lbr_link_0", stamp=ns_to_stamp(i * 10 * MS)))
        msg_pose.pose = transform_mm_to_pose(T)
        rig.pose_pub.publish(msg_pose)
    assert spin_until(rig.ex, lambda: poses.accepted_poses >= 8, 5.0)
    for i in range(7):
        rig.img_pub.publish(_image((10 * i + 5) * MS))
    assert spin_until(rig.ex, lambda: rig.node.health.accepted >= 7, 5.0)
    return bands, handle


def test_feedback_and_markers_give_each_levels_coverage_once_an_xray_is_in(rig) -> None:
    from visualization_msgs.msg import MarkerArray

    from usx_model.levels.coverage import LevelCoverage
    from usx_ros.sweep_action import MARKERS_TOPIC

    markers: list[MarkerArray] = []
    rig.client_node.create_subscription(MarkerArray, MARKERS_TOPIC, markers.append, RESULT_QOS)
    bands, handle = _sweep_through_l3(rig, "cov")
    n = len(rig.feedback)
    assert spin_until(rig.ex, lambda: len(rig.feedback) > n + 1, 5.0)
    fb = rig.feedback[-1].feedback
    assert list(fb.levels) == ["L1", "L2", "L3", "L4", "L5"]
    # the same count, made independently from the node's bone points and bands
    offline = LevelCoverage(bands)
    offline.add(rig.node.sweep.bone_points_mm())
    want = offline.fractions()
    np.testing.assert_allclose(fb.coverage, [want[lv] for lv in range(1, 6)], atol=1e-6)
    assert fb.coverage[2] > 0.0 and fb.coverage[0] == 0.0  # L3 seen, L1 not
    assert list(fb.covered) == [c >= 0.5 for c in fb.coverage]
    assert spin_until(rig.ex, lambda: markers, 5.0)
    texts = [m.text for m in markers[-1].markers if m.text]
    assert texts[2].startswith("L3 ") and len(texts) == 5
    rig.call(rig.stop)
    res = rig.result(handle).result
    assert list(res.levels) == list(fb.levels) and res.coverage[2] == pytest.approx(want[3])
    if want[3] < 0.5:  # only the goal's level is named
        assert "below 0.5 coverage: L3" in res.message and "L1" not in res.message


def _live_points(rig) -> list:
    """Every usx_msgs/SweepPoints the node sends, as they arrive."""
    from usx_msgs.msg import SweepPoints
    from usx_ros.qos import LIVE_QOS

    live: list[SweepPoints] = []
    rig.client_node.create_subscription(
        SweepPoints, "/usx/sweep/live_points", live.append, LIVE_QOS
    )
    return live


@pytest.mark.parametrize("rig", [{"min_level_coverage": 0.01}], indirect=True)
def test_a_covered_level_sends_the_bone_points_so_far_for_the_live_completion(rig) -> None:
    from usx_ros.conversions import xyz_from_cloud_mm

    live = _live_points(rig)
    _, handle = _sweep_through_l3(rig, "live")
    assert spin_until(rig.ex, lambda: live, 5.0)
    msg = live[0]
    assert (msg.sweep_id, msg.sequence, msg.header.frame_id) == ("live", 0, "lbr_link_0")
    assert list(msg.levels) == ["L1", "L2", "L3", "L4", "L5"]
    assert msg.covered[2] and not msg.covered[0]  # L3 swept, L1 not
    assert msg.points[2] > 0 and msg.points[0] == 0
    pts = xyz_from_cloud_mm(msg.cloud)
    assert 0 < len(pts) <= len(rig.node.sweep.bone_points_mm())
    n = len(live)
    rig.call(rig.stop)
    assert rig.result(handle).result.success
    # once the sweep stopped recording: no live points, only its closing points (all of
    # them, for the X-ray placement while the breathing fit runs)
    assert spin_until(rig.ex, lambda: len(live) > n, 5.0)
    spin_until(rig.ex, lambda: False, 0.3)  # bounded: give a wrong live send a chance
    assert [(m.closing, m.sequence) for m in live[n:]] == [(True, n)]


@pytest.mark.parametrize("rig", [{"min_level_coverage": 0.01}], indirect=True)
def test_a_cancelled_sweep_whose_live_points_went_out_is_declared_void(rig) -> None:
    live = _live_points(rig)
    _, handle = _sweep_through_l3(rig, "void")
    assert spin_until(rig.ex, lambda: live, 5.0)
    cancel = handle.cancel_goal_async()
    assert spin_until(rig.ex, cancel.done, timeout_s=5.0)
    assert spin_until(rig.ex, lambda: live[-1].discarded, 5.0)
    last = live[-1]
    assert last.sweep_id == "void" and last.cloud.width * last.cloud.height == 0
    assert rig.points == []  # and nothing final of it
