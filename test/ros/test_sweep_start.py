"""The sweep-start handshake in-process: phantom, probe_tracker and us_compounding, with
the tracker started late. The phantom may not begin a pass until the compounding node's
start service confirms a live pose stream, so no frame is lost for want of a pose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from usx_ros.nodes.probe_tracker import ProbeTracker
from usx_ros.nodes.us_compounding import UsCompounding
from usx_ros.qos import STATE_QOS
from usx_ros.sim.phantom import PhantomNode
from usx_ros.testing import spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

CONFIG = Path(__file__).resolve().parents[2] / "config" / "phantom.yaml"
N_FRAMES, SIZE, DEPTH_MM = 20, 128, 60.0


def _params(node: str, drop: tuple[str, ...] = (), **overrides) -> list[Parameter]:
    shipped = yaml.safe_load(CONFIG.read_text())[node]["ros__parameters"]
    merged = {k: v for k, v in {**shipped, **overrides}.items() if k not in drop}
    return [Parameter(k, value=v) for k, v in merged.items()]


def test_a_late_probe_tracker_costs_no_frames(ros_context, ros_node, tmp_path):
    # One calibration for the three nodes: SIZE x SIZE images, DEPTH_MM deep.
    cal = write_probe_calibration(tmp_path / "probe.yaml", DEPTH_MM / SIZE, SIZE)
    # A bag recorder's reader: the joint states have a subscriber before the tracker's.
    ros_node.create_subscription(JointState, "/lbr/joint_states", lambda m: None, STATE_QOS)
    phantom = PhantomNode(
        context=ros_context,
        parameter_overrides=_params(
            "phantom",
            n_frames=N_FRAMES,
            lateral_offsets_mm=[0.0],
            rows=SIZE,
            cols=SIZE,
            probe_calibration=cal,
            xray_pixel_mm=2.0,
            ground_truth_points_per_level=256,
            start_delay_s=0.3,
            connect_settle_s=0.0,
            # no wait_for_links (default []): the start handshake alone must hold it back
            drop=("wait_for_links",),
        ),
    )
    compounding = UsCompounding(
        context=ros_context,
        parameter_overrides=_params("us_compounding", rows=SIZE, cols=SIZE, probe_calibration=cal),
    )
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(phantom)
    executor.add_node(compounding)
    executor.add_node(ros_node)
    tracker = None
    try:
        assert spin_until(executor, lambda: phantom.start_refusals >= 3, timeout_s=30.0), (
            f"the start was not refused without a tracker: {phantom.status()}"
        )
        assert phantom.frames_published == 0 and not compounding.active
        tracker = ProbeTracker(
            context=ros_context,
            parameter_overrides=_params("probe_tracker", probe_calibration=cal),
        )
        executor.add_node(tracker)
        assert spin_until(executor, lambda: compounding.sweeps_completed == 1, timeout_s=30.0)
        status = compounding.status()
        assert phantom.frames_published == N_FRAMES
        assert status["frames_placed"] == N_FRAMES, status
        assert status["drops_by_reason"] == {} and status["rejected_input"] == {}
    finally:
        executor.shutdown()
        for node in (phantom, compounding, tracker):
            if node is not None:
                node.destroy_node()
