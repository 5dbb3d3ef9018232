"""Each node's ENDPOINTS (what docs/parameters.md lists) against what the node creates."""

from __future__ import annotations

import importlib

import pytest

from usx_ros.graph import graph

pytestmark = pytest.mark.ros

#: Topics and services every rclpy node has (logging, parameters, type descriptions).
_INFRASTRUCTURE = {"/rosout", "/parameter_events"}
_NODE_SERVICES = {
    "describe_parameters",
    "get_parameter_types",
    "get_parameters",
    "get_type_description",
    "list_parameters",
    "set_parameters",
    "set_parameters_atomically",
}


def _type_name(cls: type) -> str:
    """``sensor_msgs/msg/Image`` from the generated class."""
    package, kind = cls.__module__.split(".")[:2]
    return f"{package}/{kind}/{cls.__name__}"


#: The services every lifecycle node has besides (rclpy's LifecycleNode; its
#: ``~/transition_event`` publisher is made by rcl and not listed among the node's).
_LIFECYCLE = {
    "change_state",
    "get_state",
    "get_available_states",
    "get_available_transitions",
    "get_transition_graph",
}


def _created(node) -> set[tuple[str, str, str]]:
    """(kind, name, type) of every topic and service the node made itself."""
    own = f"/{node.get_name()}/"
    found = {("publishes", p.topic_name, _type_name(p.msg_type)) for p in node.publishers}
    found |= {("subscribes", s.topic_name, _type_name(s.msg_type)) for s in node.subscriptions}
    found |= {("serves", s.service_name, _type_name(s.srv_type)) for s in node.services}
    found |= {("calls", c.service_name, _type_name(c.srv_type)) for c in node.clients}
    return {
        (kind, name, type_)
        for kind, name, type_ in found
        if name not in _INFRASTRUCTURE
        and not (name.startswith(own) and name[len(own) :] in _NODE_SERVICES | _LIFECYCLE)
    }


def _lifecycle(node) -> set[str]:
    own = f"/{node.get_name()}/"
    names = {s.service_name for s in node.services}
    return {n[len(own) :] for n in names if n.startswith(own)} & _LIFECYCLE


@pytest.mark.parametrize("description", graph("phantom"), ids=lambda d: d.name)
def test_endpoints_list_what_the_node_creates(ros_context, description):
    module = importlib.import_module(description.module)
    node = description.node_class()(context=ros_context)
    own = f"/{node.get_name()}/"
    try:
        created = _created(node)
        lifecycle = _lifecycle(node)
    finally:
        node.destroy_node()
    documented = {(e.kind, e.name.replace("~/", own), e.type): e for e in module.ENDPOINTS}
    undocumented = created - set(documented)
    assert not undocumented, f"{description.name} creates, ENDPOINTS lacks: {undocumented}"
    # An endpoint with a note may depend on parameters; the others exist with the defaults.
    missing = {key for key, e in documented.items() if not e.note} - created
    assert not missing, f"{description.name} ENDPOINTS lists, the node lacks: {missing}"
    # a managed node offers the standard lifecycle interface, a plain one none of it
    assert lifecycle == (_LIFECYCLE if description.managed else set())
