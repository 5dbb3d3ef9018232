"""Repository-wide pytest fixtures.

ROS fixtures import rclpy lazily, so core tests run in an environment without ROS.
Every test session gets its own ROS_DOMAIN_ID (unless one is set) so that parallel
runs on one machine do not hear each other.
"""

from __future__ import annotations

import itertools
import os

import pytest

# The ROS layout puts each package in a same-named folder (usx_model/usx_model). Import the
# installed packages before collection so that pytest's importlib mode, which names test
# modules after their path (usx_model.test.…), finds the real packages in sys.modules
# instead of treating the outer folders as namespace packages.
import usx_model  # noqa: F401
import usx_ros  # noqa: F401

os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
# Loopback only: tests never send DDS traffic off this machine.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

_node_counter = itertools.count()


@pytest.fixture(scope="session")
def ros_context():
    """An initialised rclpy context for the whole session, shut down at the end."""
    import rclpy

    from usx_ros.dds import configure_dds

    context = rclpy.context.Context()
    configure_dds()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


@pytest.fixture
def ros_node(ros_context):
    """A fresh node per test, destroyed afterwards."""
    import rclpy

    node = rclpy.create_node(f"usx_test_{os.getpid()}_{next(_node_counter)}", context=ros_context)
    yield node
    node.destroy_node()
