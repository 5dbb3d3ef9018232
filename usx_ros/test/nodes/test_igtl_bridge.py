"""igtl_bridge in-process: ROS pose, frame and completed spine in -> OpenIGTLink out."""

from __future__ import annotations

import socket
import threading

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Header

from usx_model.base.transforms import make_transform
from usx_ros.conversions import (
    array_to_image,
    cloud_to_array,
    m_to_mm,
    ns_to_stamp,
    points_mm_to_cloud,
    transform_mm_to_pose,
)
from usx_ros.igtl.client import receive
from usx_ros.igtl.messages import parse_polydata
from usx_ros.nodes.igtl_bridge import IgtlBridge
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.testing import spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

T_BASE_PROBE = make_transform(
    np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), [612.5, -41.25, 318.0]
)
SPACING = 0.2


@pytest.fixture
def bridge(ros_context, ros_node, tmp_path):
    cal = write_probe_calibration(tmp_path / "probe.yaml", spacing_mm=SPACING, width_px=32)
    node = IgtlBridge(
        context=ros_context,
        parameter_overrides=[
            Parameter("port", value=0),
            Parameter("probe_calibration", value=cal),
            Parameter("image_rate_hz", value=100.0),
        ],
    )
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(ros_node)
    yield node, ex
    ex.shutdown()
    node.close()
    node.destroy_node()


def _spine_cloud() -> PointCloud2:
    rng = np.random.default_rng(1)
    pts = rng.uniform([500, -100, 200], [700, 100, 400], (500, 3))
    levels = np.repeat(np.arange(1, 6, dtype=np.uint8), 100)
    unc_m = rng.uniform(0.0002, 0.003, 500).astype(np.float32)
    fields = {"level": levels, "uncertainty": unc_m}
    return points_mm_to_cloud(pts, Header(frame_id="lbr_link_0"), fields)


def test_pose_frame_and_spine_reach_an_openigtlink_client(bridge, ros_node) -> None:
    node, ex = bridge
    server = node.server
    got: dict = {}
    want = {"ProbeToBase", "USImage", *(f"Spine_L{lv}" for lv in range(1, 6))}
    client = threading.Thread(
        target=lambda: got.update(
            receive(server.host, server.port, lambda m: want <= set(m), timeout_s=20.0)
        )
    )
    client.start()
    assert spin_until(ex, lambda: server.clients == 1, 5.0)
    pose_pub = ros_node.create_publisher(PoseStamped, "/usx/probe_pose", STATE_QOS)
    image_pub = ros_node.create_publisher(Image, "/us/image", SENSOR_QOS)
    spine_pub = ros_node.create_publisher(PointCloud2, "/usx/completed_spine", RESULT_QOS)
    assert spin_until(ex, lambda: spine_pub.get_subscription_count() > 0, 5.0)
    pose = PoseStamped(header=Header(frame_id="lbr_link_0", stamp=ns_to_stamp(10**9)))
    pose.pose = transform_mm_to_pose(T_BASE_PROBE)
    pose_pub.publish(pose)
    assert spin_until(ex, lambda: node.sent["transform"] == 1, 5.0)
    frame = (np.arange(40 * 32) % 200).astype(np.uint8).reshape(40, 32)
    header = Header(frame_id="us_image", stamp=ns_to_stamp(10**9))
    image_pub.publish(array_to_image(frame, "mono8", header))
    assert spin_until(ex, lambda: node.sent["image"] == 1, 5.0)
    cloud = _spine_cloud()
    spine_pub.publish(cloud)
    assert spin_until(ex, lambda: node.sent["polydata"] == 5, 5.0)
    client.join(20.0)
    assert want <= set(got), sorted(got)

    import pyigtl

    tf = pyigtl.TransformMessage()
    tf._unpack_content(got["ProbeToBase"][2])
    np.testing.assert_allclose(tf.matrix, T_BASE_PROBE, atol=1e-3)
    img = pyigtl.ImageMessage()
    img._unpack_content(got["USImage"][2])
    np.testing.assert_array_equal(img.image.reshape(40, 32), frame)
    # pixel (0, 0) lies where the calibration and the pose put it
    expected = T_BASE_PROBE @ node._T_probe_pixel
    np.testing.assert_allclose(img.ijk_to_world_matrix, expected, atol=1e-3)
    # the spine's points equal the ROS cloud's (m -> mm) within 0.01 mm
    arr = cloud_to_array(cloud, ("x", "y", "z", "level", "uncertainty"))
    ros_mm = m_to_mm(np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64))
    for lv in range(1, 6):
        points, cells, scalars = parse_polydata(got[f"Spine_L{lv}"][2])
        mine = arr["level"] == lv
        np.testing.assert_allclose(points, ros_mm[mine], atol=0.01)
        assert len(cells) == 2 * len(points)
        # the uncertainty as point data, m -> mm
        unc_mm = m_to_mm(arr["uncertainty"][mine].astype(np.float64))
        np.testing.assert_allclose(scalars["uncertainty_mm"], unc_mm, rtol=1e-6)


def test_a_taken_port_is_reported_and_the_node_runs_on(ros_context, tmp_path) -> None:
    from diagnostic_msgs.msg import DiagnosticStatus

    taken = socket.create_server(("127.0.0.1", 0))
    try:
        node = IgtlBridge(
            context=ros_context,
            parameter_overrides=[Parameter("port", value=taken.getsockname()[1])],
        )
        try:
            assert node.server is None and "cannot serve on 127.0.0.1:" in node.error
            status = node.diagnostics.status()
            assert status.level == DiagnosticStatus.ERROR and status.message == node.error
        finally:
            node.destroy_node()
    finally:
        taken.close()
