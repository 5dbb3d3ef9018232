"""The running graph in Rerun: a node that hands the usx topics to ``RerunLogger``.

``usx view --serve`` without ``--bag``. It subscribes to the topics ``tools/rerun_log.py``
logs, with the QoS their publishers offer (``usx_ros/qos.py``, README runtime graph), and
logs each message on the ``ros_time`` time line at its receive time. Results are
transient-local, so a viewer started after the completion still shows the latest spine.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from usx_ros import qos
from usx_ros.dds import configure_dds
from usx_ros.health import InputHealth
from usx_ros.interfaces import Endpoint
from usx_ros.tools.bag import message_class
from usx_ros.tools.rerun_log import RerunLogger

#: One subscription per topic that ``RerunLogger`` logs (usx_ros/test/tools/test_view_live.py).
ENDPOINTS = (
    Endpoint("subscribes", "/lbr/joint_states", "sensor_msgs/msg/JointState", "STATE_QOS"),
    Endpoint("subscribes", "/us/image", "sensor_msgs/msg/Image", "SENSOR_QOS", "mono8"),
    Endpoint("subscribes", "/usx/bone_points", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/xray_points", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/completed_spine", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/spine_completion", "usx_msgs/msg/SpineCompletion", "RESULT_QOS"),
)


class ViewerNode(Node):
    """Subscribes to the usx topics and logs every message with ``logger``.

    A message that does not convert is counted and reported (rate-limited), never fatal.
    """

    def __init__(self, logger: RerunLogger, **kwargs) -> None:
        super().__init__("usx_view", **kwargs)
        self._rerun = logger  # not _logger: rclpy.Node keeps its own logger there
        self.health = InputHealth(self.get_logger())
        for e in ENDPOINTS:
            callback = functools.partial(self._on_message, e.name)
            self.create_subscription(message_class(e.type), e.name, callback, getattr(qos, e.qos))

    def _on_message(self, topic: str, msg) -> None:
        try:
            self._rerun.log(topic, msg, self.get_clock().now().nanoseconds)
        except ValueError as exc:
            self.health.reject(topic, str(exc))
            return
        self.health.accept()


def spin(logger: RerunLogger, keep_going: Callable[[], bool]) -> None:
    """Run a ``ViewerNode`` until Ctrl-C, SIGTERM or ``keep_going()`` turns false.

    rclpy's own signal handlers turn SIGINT and SIGTERM into a shutdown of its context.
    """
    configure_dds()
    rclpy.init()
    node = ViewerNode(logger)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Bounded waits, re-checking both conditions.
        while rclpy.ok() and keep_going():
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
