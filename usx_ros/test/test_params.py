"""Parameter declaration: descriptors, start-up validation, run-time changes."""

from __future__ import annotations

import pytest
from rclpy.parameter import Parameter

from usx_ros.params import ParameterError, ParamSpec, declare_params

pytestmark = pytest.mark.ros

SPECS = (
    ParamSpec("rate_hz", 30.0, "frame rate", min_value=1.0, max_value=120.0),
    ParamSpec("mode", "mean", "compounding", choices=("mean", "maximum", "latest")),
    ParamSpec("frame", "lbr_link_0", "base frame", read_only=True),
    ParamSpec("count", 5, "levels", min_value=1, max_value=5),
    ParamSpec("xyz_mm", [0.0, 0.0, 150.0], "offset", list_of=float, length=3),
)


def _node(ros_context, overrides=()):
    import rclpy

    return rclpy.create_node(
        "params_under_test", context=ros_context, parameter_overrides=list(overrides)
    )


def test_defaults_and_descriptors(ros_context):
    node = _node(ros_context)
    try:
        values = declare_params(node, SPECS)
        assert values == {
            "rate_hz": 30.0,
            "mode": "mean",
            "frame": "lbr_link_0",
            "count": 5,
            "xyz_mm": [0.0, 0.0, 150.0],
        }
        d = node.describe_parameter("rate_hz")
        assert d.description == "frame rate"
        assert d.floating_point_range[0].to_value == 120.0
        assert node.describe_parameter("frame").read_only
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (Parameter("rate_hz", value=500.0), "rate_hz"),
        (Parameter("mode", value="median"), r"expected one of \['mean', 'maximum', 'latest'\]"),
        (Parameter("count", value=0), "count"),
        (Parameter("xyz_mm", value=[1.0, 2.0]), "expected 3 values, got 2"),
        (Parameter("rate_hz", value="fast"), "rate_hz"),
    ],
)
def test_invalid_startup_values_raise(ros_context, override, message):
    node = _node(ros_context, [override])
    try:
        with pytest.raises(ParameterError, match=message):
            declare_params(node, SPECS)
    finally:
        node.destroy_node()


def test_runtime_changes_are_validated(ros_context):
    node = _node(ros_context)
    try:
        values = declare_params(node, SPECS)
        ok = node.set_parameters([Parameter("mode", value="maximum")])[0]
        assert ok.successful and values["mode"] == "maximum"
        bad = node.set_parameters([Parameter("mode", value="median")])[0]
        assert not bad.successful and values["mode"] == "maximum"
        ro = node.set_parameters([Parameter("frame", value="world")])[0]
        assert not ro.successful
    finally:
        node.destroy_node()
