"""Managed nodes: the lifecycle of a small ManagedNode, then of every product node."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

pytestmark = pytest.mark.ros

_ids = itertools.count()


def _toy_class():
    from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from usx_ros.diagnostics import NodeDiagnostics
    from usx_ros.health import InputHealth
    from usx_ros.nodes.managed import ManagedNode
    from usx_ros.params import declare_params, param
    from usx_ros.qos import RESULT_QOS

    @dataclass(frozen=True)
    class ToyParams:
        gain: float = param(1.0, "a gain", min_value=0.0, max_value=10.0)

    class Toy(ManagedNode):
        def __init__(self, **kwargs) -> None:
            super().__init__(f"usx_toy_{next(_ids)}", **kwargs)

        def configure(self) -> None:
            declare_params(self, ToyParams)
            self.got, self.ticks, self.released = [], 0, 0
            self.health = InputHealth(self.get_logger())
            self.create_subscription(String, self.topic, self.got.append, 10)
            self.latched = []  # (topic, data): two latched topics, one list to keep the order
            self.group = MutuallyExclusiveCallbackGroup()  # theirs, as completion's `work`
            for name in ("state_a", "state_b"):
                self.create_subscription(
                    String,
                    f"{self.topic}/{name}",
                    lambda m, n=name: self.latched.append((n, m.data)),
                    RESULT_QOS,
                    callback_group=self.group,
                )
            self.create_service(Trigger, f"{self.topic}/srv", self._srv)
            self.create_timer(0.01, self._tick)
            self.pub = self.create_publisher(String, f"{self.topic}/out", 10)
            self.diagnostics = NodeDiagnostics(self, self.health, period_s=0.1, first_s=0.05)

        @property
        def topic(self) -> str:
            return f"/{self.get_name()}/in"

        def _srv(self, req, resp):
            resp.success, resp.message = True, "done"
            return resp

        def _tick(self) -> None:
            self.ticks += 1

        def release(self) -> None:
            self.released += 1

    return Toy


def _autostart(value: bool):
    from rclpy.parameter import Parameter

    return Parameter("autostart", value=value)


def _waiting_toy(ros_context, ros_node):
    """A toy node left unconfigured, and an executor spinning it with the test's node."""
    from rclpy.executors import SingleThreadedExecutor

    node = _toy_class()(context=ros_context, parameter_overrides=[_autostart(False)])
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(ros_node)
    return node, executor


def test_a_node_built_with_autostart_is_active_and_one_without_waits(ros_context) -> None:
    Toy = _toy_class()
    started = Toy(context=ros_context)
    waiting = Toy(context=ros_context, parameter_overrides=[_autostart(False)])
    try:
        assert started.lifecycle_state == "active" and started.is_active
        assert waiting.lifecycle_state == "unconfigured"
        assert not hasattr(waiting, "pub")  # configure() has not run
        # start-up done only once active: run_node then freezes the heap's objects
        assert started.heap_settled and not waiting.heap_settled
    finally:
        started.destroy_node()
        waiting.destroy_node()


def test_an_inactive_node_processes_nothing_and_says_so(ros_context, ros_node) -> None:
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.lifecycle import TransitionCallbackReturn
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from usx_ros.diagnostics import DIAGNOSTICS_TOPIC, WARN
    from usx_ros.qos import DIAGNOSTICS_QOS
    from usx_ros.testing import spin_until

    node, executor = _waiting_toy(ros_context, ros_node)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.lifecycle_state == "inactive"
        diag = []
        ros_node.create_subscription(
            DiagnosticArray,
            DIAGNOSTICS_TOPIC,
            lambda m: diag.extend(s for s in m.status if s.name == node.get_name()),
            DIAGNOSTICS_QOS,
        )
        pub = ros_node.create_publisher(String, node.topic, 10)
        client = ros_node.create_client(Trigger, f"{node.topic}/srv")
        assert spin_until(executor, lambda: pub.get_subscription_count() == 1, 10.0)
        pub.publish(String(data="a"))
        assert spin_until(executor, lambda: node.dropped_inactive >= 1, 10.0)
        future = client.call_async(Trigger.Request())
        assert spin_until(executor, future.done, 10.0)
        answer = future.result()
        assert not answer.success
        assert answer.message == f"{node.get_name()} is inactive: activate it first"
        assert spin_until(executor, lambda: diag, 10.0)  # diagnostics report while inactive
        assert diag[-1].level == WARN and diag[-1].message == "inactive: not processing"
        values = {kv.key: kv.value for kv in diag[-1].values}
        assert values["lifecycle_state"] == "inactive"
        assert node.got == [] and node.ticks == 0

        node.trigger_activate()
        pub.publish(String(data="b"))
        assert spin_until(executor, lambda: node.got and node.ticks > 0, 10.0)
        assert [m.data for m in node.got] == ["b"]
        future = client.call_async(Trigger.Request())
        assert spin_until(executor, future.done, 10.0)
        assert future.result().success and future.result().message == "done"
    finally:
        executor.shutdown()
        node.destroy_node()


def test_cleanup_releases_and_destroys_what_configure_made(ros_context) -> None:
    Toy = _toy_class()
    node = Toy(context=ros_context)
    out = f"{node.topic}/out"
    try:
        assert node.count_publishers(out) == 1
        node.trigger_deactivate()
        node.trigger_cleanup()
        assert node.lifecycle_state == "unconfigured" and node.released == 1
        assert node.count_publishers(out) == 0 and node.count_subscribers(node.topic) == 0
        assert node._owned == []
        node.trigger_configure()  # a fresh state, the same entities again
        assert node.lifecycle_state == "inactive" and node.released == 0
        assert node.count_publishers(out) == 1
        node.close()
        assert node.lifecycle_state == "finalized" and node.released == 1
        assert node.count_publishers(out) == 0
    finally:
        node.destroy_node()


def test_close_survives_a_signal_that_lands_during_the_shutdown_transition() -> None:
    # Ctrl-C/SIGTERM shut the context down while close() runs the shutdown transition:
    # the state machine cannot publish it any more (RCLError). The node still releases
    # what it holds and close() returns, so the process exits 0.
    import rclpy

    context = rclpy.context.Context()
    rclpy.init(context=context)

    class Interrupted(_toy_class()):
        def release(self) -> None:
            super().release()
            rclpy.try_shutdown(context=context)  # what rclpy's signal handler does

    node = Interrupted(context=context)
    try:
        assert node.lifecycle_state == "active"
        node.close()
        assert node.released >= 1 and node._owned == []
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_an_invalid_parameter_fails_configure_cleanly(ros_context) -> None:
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from usx_ros.params import ParameterError

    Toy = _toy_class()
    bad = [Parameter("gain", value=50.0)]
    with pytest.raises(ParameterError, match="parameter 'gain'"):
        Toy(context=ros_context, parameter_overrides=bad)
    node = Toy(context=ros_context, parameter_overrides=[*bad, _autostart(False)])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert "parameter 'gain'" in node.configure_error
        assert node.lifecycle_state == "unconfigured"
        assert node.count_publishers(f"{node.topic}/out") == 0
    finally:
        node.destroy_node()


# --- the product nodes -------------------------------------------------------------------

#: node name -> a start-up parameter that must fail its configure, and the words it says.
_BAD = {
    "probe_tracker": ("max_stamp_step_s", -1.0, "max_stamp_step_s"),
    "us_compounding": ("probe_calibration", "/no/such/probe.yaml", "no such file"),
    "xray_ingest": ("xray_xyz_mm", [0.0, 1.0], "xray_xyz_mm"),
    "completion": ("weights_full", "/no/such/weights.pt", "weights_full"),
    "igtl_bridge": ("probe_calibration", "/no/such/probe.yaml", "no such file"),
}


def _managed():
    from usx_ros.graph import graph

    return [d for d in graph("phantom") if d.managed]


def _topics(description) -> list[tuple[str, str]]:
    """(kind, topic) of what the node publishes and subscribes to by default."""
    import importlib

    module = importlib.import_module(description.module)
    return [
        (e.kind, e.name)
        for e in module.ENDPOINTS
        if e.kind in ("publishes", "subscribes") and e.name.startswith("/") and not e.note
    ]


@pytest.mark.parametrize("description", _managed(), ids=lambda d: d.name)
def test_every_product_node_goes_through_its_lifecycle(ros_context, description) -> None:
    from rclpy.parameter import Parameter

    overrides = [_autostart(False)]
    if description.name == "igtl_bridge":
        overrides.append(Parameter("port", value=0))  # any free port
    node = description.node_class()(context=ros_context, parameter_overrides=overrides)
    topics = _topics(description)
    assert topics

    def mine(kind_topic) -> bool:
        kind, topic = kind_topic
        info = (
            node.get_publishers_info_by_topic
            if kind == "publishes"
            else node.get_subscriptions_info_by_topic
        )
        return any(i.node_name == node.get_name() for i in info(topic))

    try:
        assert node.lifecycle_state == "unconfigured"
        assert not any(mine(t) for t in topics)
        steps = [
            (node.trigger_configure, "inactive"),
            (node.trigger_activate, "active"),
            (node.trigger_deactivate, "inactive"),
            (node.trigger_cleanup, "unconfigured"),
            (node.trigger_configure, "inactive"),  # again, after cleanup
            (node.trigger_activate, "active"),
        ]
        for step, state in steps:
            step()
            assert node.lifecycle_state == state, f"{step.__name__} -> {node.lifecycle_state}"
            assert all(mine(t) for t in topics) == (state != "unconfigured")
            assert node.is_active == (state == "active")
        node.close()
        assert node.lifecycle_state == "finalized"
        assert not any(mine(t) for t in topics)
    finally:
        node.destroy_node()


@pytest.mark.parametrize("description", _managed(), ids=lambda d: d.name)
def test_an_invalid_parameter_fails_each_product_nodes_configure(ros_context, description):
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    name, value, words = _BAD[description.name]
    overrides = [_autostart(False), Parameter(name, value=value)]
    node = description.node_class()(context=ros_context, parameter_overrides=overrides)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert node.lifecycle_state == "unconfigured"
        assert words in node.configure_error
    finally:
        node.destroy_node()


def test_latched_messages_that_came_while_inactive_are_handed_over_on_activation(
    ros_context, ros_node
) -> None:
    from std_msgs.msg import String

    from usx_ros.qos import RESULT_QOS
    from usx_ros.testing import spin_until

    node, executor = _waiting_toy(ros_context, ros_node)
    try:
        node.trigger_configure()
        plain = ros_node.create_publisher(String, node.topic, 10)
        a = ros_node.create_publisher(String, f"{node.topic}/state_a", RESULT_QOS)
        b = ros_node.create_publisher(String, f"{node.topic}/state_b", RESULT_QOS)
        assert spin_until(
            executor, lambda: all(p.get_subscription_count() == 1 for p in (plain, a, b)), 10.0
        )
        for pub, data in ((b, "b1"), (a, "a1"), (b, "b2"), (plain, "p")):
            pub.publish(String(data=data))
        assert spin_until(executor, lambda: node.dropped_inactive >= 1, 10.0)  # the plain one
        executor.spin_once(timeout_sec=0.2)
        assert node.latched == []  # nothing processed while inactive
        node.trigger_activate()
        # handed over by a timer in the subscriptions' own group, never beside its callbacks
        assert sum(t.callback_group is node.group for t in node.timers) == 1
        assert spin_until(executor, lambda: len(node.latched) >= 2, 10.0)
        # the latest of each topic, in the order they came; the plain message stays dropped
        assert node.latched == [("state_a", "a1"), ("state_b", "b2")] and node.got == []
        assert node.dropped_inactive == 1
        assert not any(t.callback_group is node.group for t in node.timers)  # one-shot: gone
    finally:
        executor.shutdown()
        node.destroy_node()
