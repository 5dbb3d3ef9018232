"""xray_ingest in-process: XrayView + bone points -> per-level 3D X-ray points."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header, String

from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import lateral_geometry, render_lateral_xray
from usx_msgs.msg import SweepCloud, SweepPoints, XrayView
from usx_ros.conversions import cloud_to_array, ns_to_stamp, points_mm_to_cloud, xray_view_to_msg
from usx_ros.nodes.xray_ingest import XrayIngest
from usx_ros.qos import LIVE_QOS, RESULT_QOS
from usx_ros.testing import spin_until

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def scene():
    """A phantom spine whose frame is the base frame here (identity registration)."""
    spine = generate_spine(2468)
    bone = np.concatenate([p.points_mm for p in simulate_us_partials(spine, seed=0).values()])
    geometry = lateral_geometry(spine)
    return spine, bone, geometry, render_lateral_xray(spine, geometry)


class SweepCloudPublisher:
    """Publishes a PointCloud2 as one sweep's cloud (usx_msgs/SweepCloud)."""

    def __init__(self, pub) -> None:
        self.pub = pub

    def publish(self, cloud: PointCloud2, sweep_id: str = "sweep-1") -> None:
        self.pub.publish(
            SweepCloud(header=cloud.header, sweep_id=sweep_id, cloud=cloud, final=True)
        )

    def get_subscription_count(self) -> int:
        return self.pub.get_subscription_count()


@pytest.fixture
def graph(ros_context, ros_node):
    # the phantom's spine frame (LPS) is the base frame here: posterior is +y
    node = XrayIngest(
        context=ros_context,
        parameter_overrides=[Parameter("patient_posterior", value=[0.0, 1.0, 0.0])],
    )
    got: list[SweepCloud] = []
    ros_node.create_subscription(SweepCloud, "/usx/sweep/xray_points", got.append, RESULT_QOS)
    xray_pub = ros_node.create_publisher(XrayView, "/usx/xray", RESULT_QOS)
    bone_pub = SweepCloudPublisher(
        ros_node.create_publisher(SweepCloud, "/usx/sweep/bone_points", RESULT_QOS)
    )
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(ros_node)
    assert spin_until(ex, lambda: bone_pub.get_subscription_count() > 0, 5.0)
    yield node, got, xray_pub, bone_pub, ex
    ex.shutdown()
    node.destroy_node()


def test_points_land_on_each_body_mid_plane(graph, scene, ros_node):
    node, got, xray_pub, bone_pub, ex = graph
    spine, bone, geometry, shot = scene
    header = Header(frame_id="lbr_link_0")
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, shot.label, header))
    shown: list[PointCloud2] = []
    ros_node.create_subscription(PointCloud2, "/usx/xray_points", shown.append, RESULT_QOS)
    cloud = points_mm_to_cloud(bone, Header(frame_id="lbr_link_0", stamp=ns_to_stamp(42)))
    bone_pub.publish(cloud, sweep_id="sweep-42")
    assert spin_until(ex, lambda: got and shown, timeout_s=10.0), node.health.summary()
    msg = got[-1]
    assert msg.sweep_id == "sweep-42"  # named by the sweep whose points placed it
    assert msg.cloud.header.stamp == ns_to_stamp(42)
    assert bytes(shown[-1].data) == bytes(msg.cloud.data)  # the same cloud, for viewers
    assert 0.0 < node.last_place_s < 30.0  # measured, for the log
    arr = cloud_to_array(msg.cloud, ("x", "y", "z", "level"))
    assert set(np.unique(arr["level"])) == {1, 2, 3, 4, 5}
    for lv, vert in spine.vertebrae.items():
        sel = arr["level"] == lv
        x_mm = float(np.mean(arr["x"][sel])) * 1000.0
        # Heuristic placement (no CBCT): within a few mm of the true body mid-plane.
        assert abs(x_mm - vert.body_centroid_mm[0]) < 4.0


def test_empty_labels_are_rejected_and_the_sweep_is_answered_with_no_points(graph, scene):
    node, got, xray_pub, bone_pub, ex = graph
    _, bone, geometry, shot = scene
    header = Header(frame_id="lbr_link_0")
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, np.zeros_like(shot.label), header))
    assert spin_until(ex, lambda: node.health.counts["invalid_xray"] == 1, 5.0)
    bone_pub.publish(points_mm_to_cloud(bone, header), sweep_id="s")
    # the sweep's answer: no X-ray points (completion goes on with the US-only model)
    assert spin_until(ex, lambda: got, timeout_s=5.0)
    spin_until(ex, lambda: False, timeout_s=0.5)  # bounded: give a wrong publication a chance
    assert [(m.sweep_id, m.final, m.cloud.width) for m in got] == [("s", True, 0)]
    assert node.last_place_s is None and node.published == 0


def test_status_reports_placements_and_rejects(graph, scene, ros_node):
    node, _, xray_pub, bone_pub, ex = graph
    _, bone, geometry, shot = scene
    statuses: list[dict] = []
    ros_node.create_subscription(
        String, "/xray_ingest/status", lambda m: statuses.append(json.loads(m.data)), RESULT_QOS
    )
    header = Header(frame_id="lbr_link_0")
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, np.zeros_like(shot.label), header))
    # results are keep-last 1: the next X-ray would replace this one before delivery
    assert spin_until(ex, lambda: node.health.counts["invalid_xray"] == 1, 5.0)
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, shot.label, header))
    bone_pub.publish(points_mm_to_cloud(bone, header))
    assert spin_until(
        ex,
        lambda: (
            statuses
            and statuses[-1]["placements"] == 1
            and statuses[-1]["rejected"] == {"invalid_xray": 1}
        ),
        timeout_s=15.0,
    ), statuses
    assert statuses[-1]["xray"] and statuses[-1]["last_place_s"] > 0


def test_live_points_place_the_xray_for_their_sweep_unless_it_has_closed(graph, scene, ros_node):
    node, got, xray_pub, bone_pub, ex = graph
    _, bone, geometry, shot = scene
    header = Header(frame_id="lbr_link_0")
    live_pub = ros_node.create_publisher(SweepPoints, "/usx/sweep/live_points", LIVE_QOS)
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, shot.label, header))
    bone_pub.publish(points_mm_to_cloud(bone, header), sweep_id="closed")
    assert spin_until(ex, lambda: len(got) == 1, timeout_s=10.0), node.health.summary()
    assert spin_until(ex, lambda: live_pub.get_subscription_count() > 0, 5.0)
    cloud = points_mm_to_cloud(bone, header)
    # late live points of the closed sweep: its final points placed it already
    live_pub.publish(SweepPoints(header=header, sweep_id="closed", cloud=cloud))
    spin_until(ex, lambda: False, timeout_s=0.5)  # bounded: give a wrong placement a chance
    assert len(got) == 1
    live_pub.publish(SweepPoints(header=header, sweep_id="recording", cloud=cloud))
    assert spin_until(ex, lambda: len(got) == 2, timeout_s=10.0), node.health.summary()
    assert [(m.sweep_id, m.final) for m in got] == [("closed", True), ("recording", False)]


def test_closing_points_are_placed_unpublished_and_answer_the_same_final_points(
    graph, scene, ros_node
):
    """A stopped sweep's closing points are placed at once and kept: the final bone points,
    when they are the same, get that placement (reused, the same bytes); other final
    points (the breathing fit moved them) are placed again."""
    node, got, xray_pub, bone_pub, ex = graph
    _, bone, geometry, shot = scene
    header = Header(frame_id="lbr_link_0")
    live_pub = ros_node.create_publisher(SweepPoints, "/usx/sweep/live_points", LIVE_QOS)
    xray_pub.publish(xray_view_to_msg(geometry, shot.image, shot.label, header))
    assert spin_until(ex, lambda: node.xray is not None, 5.0)
    assert spin_until(ex, lambda: live_pub.get_subscription_count() > 0, 5.0)
    cloud = points_mm_to_cloud(bone, header)
    live_pub.publish(SweepPoints(header=header, sweep_id="a", cloud=cloud, closing=True))
    assert spin_until(ex, lambda: node._placed is not None, timeout_s=10.0), node.health.summary()
    spin_until(ex, lambda: False, timeout_s=0.3)  # bounded: give a wrong publication a chance
    assert got == [] and node.published == 0  # kept, not published
    bone_pub.publish(points_mm_to_cloud(bone, header), sweep_id="a")
    assert spin_until(ex, lambda: len(got) == 1, timeout_s=10.0), node.health.summary()
    assert node.reused == 1 and (got[0].sweep_id, got[0].final) == ("a", True)
    moved = bone + np.array([0.0, 0.4, 0.0])  # corrected for breathing: other points
    bone_pub.publish(points_mm_to_cloud(moved, header), sweep_id="b")
    assert spin_until(ex, lambda: len(got) == 2, timeout_s=10.0), node.health.summary()
    assert node.reused == 1  # placed again
    first, second = (cloud_to_array(m.cloud, ("x", "y", "z", "level")) for m in got)
    assert first.shape == second.shape
    assert not np.array_equal(first["y"], second["y"])  # placed on the moved points
