"""usx view, live: the viewer node logs what the graph publishes and survives bad messages."""

from __future__ import annotations

import numpy as np
import pytest
import rerun as rr
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from usx_msgs.msg import VertebraCompletion
from usx_ros.conversions import points_mm_to_cloud
from usx_ros.qos import RESULT_QOS
from usx_ros.testing import spin_until
from usx_ros.tools.rerun_log import TOPICS, RerunLogger
from usx_ros.tools.view_live import ENDPOINTS, ViewerNode

pytestmark = pytest.mark.ros


def _spine_cloud() -> PointCloud2:
    """40 points per level L1..L5 (m); L3 failed the quality gate (insufficient US)."""
    rng = np.random.default_rng(0)
    pts = rng.uniform([500, -100, 50], [700, 100, 200], (200, 3))
    levels = np.repeat(np.arange(1, 6, dtype=np.uint8), 40)
    status = np.where(
        levels == 3, VertebraCompletion.STATUS_INSUFFICIENT_US, VertebraCompletion.STATUS_OK
    ).astype(np.uint8)
    unc = rng.uniform(0.0, 0.002, 200).astype(np.float32)
    extra = {"level": levels, "uncertainty": unc, "status": status}
    return points_mm_to_cloud(pts, Header(frame_id="lbr_link_0"), extra)


def _labels(rrd) -> dict[str, list[str]]:
    """Entity path -> the Points3D labels logged there."""
    from rerun.chunk import RrdReader

    out: dict[str, list[str]] = {}
    for chunk in RrdReader(str(rrd)).stream():
        batch = chunk.to_record_batch()
        if "Points3D:labels" in batch.schema.names:
            rows = batch.column("Points3D:labels").to_pylist()
            out.setdefault(str(chunk.entity_path), []).extend(v for r in rows if r for v in r)
    return out


def test_the_node_subscribes_to_every_logged_topic() -> None:
    assert tuple(e.name for e in ENDPOINTS) == TOPICS
    assert all(e.kind == "subscribes" for e in ENDPOINTS)


def test_a_published_spine_is_logged_and_a_bad_cloud_only_counted(
    ros_context, ros_node, tmp_path
) -> None:
    rrd = tmp_path / "live.rrd"
    rec = rr.RecordingStream("usx")
    rec.save(str(rrd))
    logger = RerunLogger(rec)
    viewer = ViewerNode(logger, context=ros_context)
    pub = ros_node.create_publisher(PointCloud2, "/usx/completed_spine", RESULT_QOS)
    bad = ros_node.create_publisher(PointCloud2, "/usx/xray_points", RESULT_QOS)
    try:
        # A cloud without its level field: counted, reported, and the node carries on.
        bad.publish(points_mm_to_cloud(np.zeros((3, 3)), Header(frame_id="lbr_link_0")))
        assert spin_until(viewer, lambda: viewer.health.dropped == 1, timeout_s=10.0)
        pub.publish(_spine_cloud())
        assert spin_until(viewer, lambda: logger.counts["spines"] == 1, timeout_s=10.0)
    finally:
        viewer.destroy_node()
        rec.flush()
        rec.disconnect()
    assert "lacks field(s) ['level']" in viewer.health.last_detail["/usx/xray_points"]
    labels = _labels(rrd)
    assert labels["/world/spine/L1"] == ["L1"]
    assert labels["/world/spine/L3"] == ["L3 INSUFFICIENT_US"]
