"""launch/phantom.launch.py under launch_pytest — only where ROS 2 launch is installed.

A wheels-only install has no ``launch``/``launch_ros``/``launch_pytest``; there the same
graph is tested by ``test_phantom_graph.py`` (``usx launch phantom`` + a subscriber in
another process) and this module is skipped.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

launch_pytest = pytest.importorskip("launch_pytest")

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "phantom.launch.py"


def _description():
    spec = importlib.util.spec_from_file_location("phantom_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


@launch_pytest.fixture
def launch_description():
    from launch.actions import TimerAction
    from launch_pytest.actions import ReadyToTest

    return _description(), TimerAction(period=1.0, actions=[ReadyToTest()])


@pytest.mark.launch(fixture=launch_description)
def test_completed_spine_arrives(ros_node):
    from sensor_msgs.msg import PointCloud2

    from usx_ros.qos import RESULT_QOS
    from usx_ros.testing import spin_until

    got = []
    ros_node.create_subscription(PointCloud2, "/usx/completed_spine", got.append, RESULT_QOS)
    assert spin_until(ros_node, lambda: got, timeout_s=300.0)
    assert got[0].header.frame_id == "lbr_link_0"
