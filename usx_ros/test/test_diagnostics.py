"""/diagnostics: one status per node, its level from its rejections and its own check."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from usx_ros.diagnostics import DIAGNOSTICS_TOPIC, WARN, NodeDiagnostics, key_values
from usx_ros.health import InputHealth
from usx_ros.qos import DIAGNOSTICS_QOS
from usx_ros.testing import spin_until


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"a": 1}, [("a", "1")]),
        ({"a": 0.123456789}, [("a", "0.123457")]),
        ({"a": None, "b": True}, [("a", ""), ("b", "true")]),
        ({"a": {"b": {"c": "x"}}, "d": [1, 2]}, [("a.b.c", "x"), ("d", "[1, 2]")]),
    ],
)
def test_key_values_flatten_nested_mappings(values, expected) -> None:
    assert [(kv.key, kv.value) for kv in key_values(values)] == expected


@pytest.mark.ros
def test_status_level_follows_rejections_and_the_nodes_check(ros_context, ros_node) -> None:
    import rclpy

    node = rclpy.create_node("diag_subject", context=ros_context)
    verdict: list = [None]
    health = InputHealth(node.get_logger())
    diag = NodeDiagnostics(node, health, lambda: {"frames": {"placed": 7}}, lambda: verdict[0])
    try:
        first = diag.status()
        assert (first.level, first.message, first.name) == (
            DiagnosticStatus.OK,
            "ok",
            "diag_subject",
        )
        health.accept()
        health.reject("stamp_jump", "x")
        health.reject("stamp_jump", "x")
        health.reject("invalid_image", "y")
        warn = diag.status()
        assert warn.level == DiagnosticStatus.WARN
        assert warn.message == "rejected since the last report: invalid_image (1), stamp_jump (2)"
        values = {kv.key: kv.value for kv in warn.values}
        assert values == {
            "accepted": "1",
            "rejected": "3",
            "rejected.invalid_image": "1",
            "rejected.stamp_jump": "2",
            "frames.placed": "7",
        }
        assert diag.status().level == DiagnosticStatus.OK  # nothing new since
        verdict[0] = (WARN, "last completion: L3 low_confidence")
        assert diag.status().message == "last completion: L3 low_confidence"
    finally:
        node.destroy_node()


@pytest.mark.ros
def test_reports_arrive_on_diagnostics(ros_context, ros_node) -> None:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    node = rclpy.create_node("diag_publisher", context=ros_context)
    NodeDiagnostics(node, InputHealth(node.get_logger()), period_s=0.1)
    got: list[DiagnosticArray] = []
    ros_node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, got.append, DIAGNOSTICS_QOS)
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(node)
    ex.add_node(ros_node)
    try:
        assert spin_until(
            ex, lambda: any(s.name == "diag_publisher" for m in got for s in m.status), 10.0
        )
    finally:
        ex.shutdown()
        node.destroy_node()


@pytest.mark.ros
def test_first_report_comes_before_a_whole_period(ros_context, ros_node) -> None:
    """A restarted node is seen as back within first_s, not after its report period."""
    import time

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    got: list[float] = []
    ros_node.create_subscription(
        DiagnosticArray,
        DIAGNOSTICS_TOPIC,
        lambda m: got.extend(time.monotonic() for s in m.status if s.name == "diag_first"),
        DIAGNOSTICS_QOS,
    )
    ex = SingleThreadedExecutor(context=ros_context)
    ex.add_node(ros_node)
    node = rclpy.create_node("diag_first", context=ros_context)
    built = time.monotonic()
    NodeDiagnostics(node, InputHealth(node.get_logger()), period_s=30.0, first_s=0.5)
    ex.add_node(node)
    try:
        assert spin_until(ex, lambda: bool(got), 10.0)
        assert got[0] - built < 5.0  # well before the 30 s period
        assert not spin_until(ex, lambda: len(got) > 1, 2.0)  # one first report, not a timer
    finally:
        ex.shutdown()
        node.destroy_node()
