"""probe_tracker in-process: FK output against the core, and one test per bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.tracking.iiwa import forward_kinematics
from usx_ros.conversions import pose_to_transform_mm
from usx_ros.nodes.probe_tracker import ProbeTracker
from usx_ros.params import ParameterError
from usx_ros.qos import RESULT_QOS, STATE_QOS
from usx_ros.testing import spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

NAMES = [f"lbr_A{i}" for i in range(1, 8)]
Q = np.deg2rad([10.0, 30.0, -5.0, -60.0, 3.0, 45.0, 20.0])


@pytest.fixture
def graph(ros_context, ros_node, tmp_path):
    cal = write_probe_calibration(tmp_path / "probe.yaml", hand_eye_rpy_deg=(0.0, 0.0, 90.0))
    tracker = ProbeTracker(
        context=ros_context,
        parameter_overrides=[Parameter("probe_calibration", value=cal)],
    )
    received: list[PoseStamped] = []
    ros_node.create_subscription(PoseStamped, "/usx/probe_pose", received.append, STATE_QOS)
    pub = ros_node.create_publisher(JointState, "/lbr/joint_states", STATE_QOS)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(tracker)
    executor.add_node(ros_node)
    spin_until(executor, lambda: pub.get_subscription_count() > 0, timeout_s=5.0)
    yield tracker, pub, received, executor
    executor.shutdown()
    tracker.destroy_node()


def _joint_state(sec: int, q=Q, names=NAMES) -> JointState:
    msg = JointState(name=list(names), position=[float(v) for v in q])
    msg.header.stamp.sec = sec
    return msg


def test_publishes_fk_times_hand_eye_in_base_frame(graph):
    _, pub, received, executor = graph
    pub.publish(_joint_state(1))
    assert spin_until(executor, lambda: received, timeout_s=5.0)
    msg = received[0]
    assert msg.header.frame_id == "lbr_link_0"
    want = forward_kinematics(Q) @ transform_from_xyz_rpy([0, 0, 150], [0, 0, 90])
    np.testing.assert_allclose(pose_to_transform_mm(msg.pose), want, atol=1e-6)
    assert msg.pose.position.z < 2.0  # metres at the ROS boundary, not mm


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (_joint_state(2, names=NAMES[:6], q=Q[:6]), "missing_joints"),
        (_joint_state(2, q=np.r_[Q[:3], np.nan, Q[4:]]), "invalid_joints"),
        (_joint_state(2, q=np.r_[Q[:1], np.deg2rad(150.0), Q[2:]]), "invalid_joints"),
        (_joint_state(0), "out_of_order"),
        (_joint_state(3600), "stamp_jump"),  # an hour ahead: rejected, not adopted
    ],
)
def test_bad_joint_states_are_counted_and_node_keeps_serving(graph, bad, reason):
    tracker, pub, received, executor = graph
    pub.publish(_joint_state(1))
    assert spin_until(executor, lambda: len(received) == 1, timeout_s=5.0)
    pub.publish(bad)
    assert spin_until(executor, lambda: tracker.health.counts[reason] == 1, timeout_s=5.0)
    pub.publish(_joint_state(3))
    assert spin_until(executor, lambda: len(received) == 2, timeout_s=5.0)


def test_invalid_parameter_fails_at_startup(ros_context):
    with pytest.raises(ParameterError, match="'input': expected one of"):
        ProbeTracker(context=ros_context, parameter_overrides=[Parameter("input", value="tf")])


def test_one_future_stamp_does_not_stop_tracking(graph):
    # A single joint state stamped an hour ahead once made every later real one
    # "out_of_order" for good (issue 26). It is rejected and the stream goes on.
    tracker, pub, received, executor = graph
    pub.publish(_joint_state(1))
    assert spin_until(executor, lambda: len(received) == 1, timeout_s=5.0)
    pub.publish(_joint_state(3600))
    assert spin_until(executor, lambda: tracker.health.counts["stamp_jump"] == 1, 5.0)
    for sec in (2, 3, 4):
        pub.publish(_joint_state(sec))
    assert spin_until(executor, lambda: len(received) == 4, timeout_s=5.0)
    assert [m.header.stamp.sec for m in received] == [1, 2, 3, 4]
    assert tracker.health.counts["out_of_order"] == 0


def test_a_source_whose_clock_stepped_is_followed_after_a_few_stamps(graph):
    tracker, pub, received, executor = graph
    pub.publish(_joint_state(1))
    assert spin_until(executor, lambda: len(received) == 1, timeout_s=5.0)
    for sec in range(7200, 7210):  # the controller's clock stepped two hours ahead
        pub.publish(_joint_state(sec))
    # the first four are rejected, from the fifth on the new timeline is followed
    assert spin_until(executor, lambda: len(received) == 7, timeout_s=5.0)
    assert tracker.health.counts["stamp_jump"] == 4 and tracker.stamps.rebased == 1
    assert [m.header.stamp.sec for m in received[1:]] == list(range(7204, 7210))


def test_status_reports_the_counters_by_reason(graph, ros_node):
    _, pub, _, executor = graph
    statuses: list[dict] = []
    ros_node.create_subscription(
        String, "/probe_tracker/status", lambda m: statuses.append(json.loads(m.data)), RESULT_QOS
    )
    pub.publish(_joint_state(1))
    pub.publish(_joint_state(2, names=NAMES[:6], q=Q[:6]))
    assert spin_until(
        executor,
        lambda: (
            statuses
            and statuses[-1]["rejected"].get("missing_joints") == 1
            and statuses[-1]["poses_published"] == 1
        ),
        timeout_s=5.0,
    ), statuses
