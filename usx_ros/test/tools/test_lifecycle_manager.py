"""LifecycleManager brings a managed node of another executor up through its services."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ros


def _tracker(ros_context, *extra):
    from rclpy.parameter import Parameter

    from usx_ros.nodes.probe_tracker import ProbeTracker

    overrides = [Parameter("autostart", value=False), *extra]
    return ProbeTracker(context=ros_context, parameter_overrides=overrides)


def _serve(ros_context, node):
    """Spin ``node`` in a background executor (as its own process would); the executor."""
    from rclpy.executors import SingleThreadedExecutor

    from usx_ros.tools.launcher import spin_in_background

    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    spin_in_background(executor)
    return executor


def test_bring_up_configures_then_activates(ros_context, ros_node) -> None:
    from usx_ros.tools.lifecycle_manager import LifecycleManager

    node = _tracker(ros_context)
    executor = _serve(ros_context, node)
    try:
        manager = LifecycleManager(ros_node, timeout_s=20.0)
        assert manager.state("probe_tracker") == "unconfigured"
        manager.bring_up("probe_tracker")
        assert node.lifecycle_state == "active"
        assert manager.state("probe_tracker") == "active"
        manager.bring_up("probe_tracker")  # already active: nothing to do
    finally:
        executor.shutdown()
        node.destroy_node()


def test_a_failed_configure_is_an_error_naming_the_node(ros_context, ros_node) -> None:
    from rclpy.parameter import Parameter

    from usx_ros.tools.lifecycle_manager import LifecycleError, LifecycleManager

    node = _tracker(ros_context, Parameter("max_stamp_step_s", value=-1.0))
    executor = _serve(ros_context, node)
    try:
        manager = LifecycleManager(ros_node, timeout_s=20.0)
        with pytest.raises(LifecycleError, match="probe_tracker failed to configure"):
            manager.bring_up("probe_tracker")
        assert node.lifecycle_state == "unconfigured"
    finally:
        executor.shutdown()
        node.destroy_node()


@pytest.mark.parametrize(
    ("alive", "timeout_s", "message"),
    [
        (lambda: False, 5.0, "nobody get_state: the node's process ended"),
        (lambda: True, 0.3, "nobody get_state: no service after 0 s"),
    ],
    ids=["process ended", "no service"],
)
def test_a_node_that_is_not_there_is_an_error(ros_node, alive, timeout_s, message) -> None:
    from usx_ros.tools.lifecycle_manager import LifecycleError, LifecycleManager

    manager = LifecycleManager(ros_node, timeout_s=timeout_s)
    with pytest.raises(LifecycleError) as err:
        manager.bring_up("nobody", alive=alive)
    assert str(err.value) == message
