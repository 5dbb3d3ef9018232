"""Parameter schemas: descriptors, typed access, start-up validation, run-time changes."""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError, dataclass

import pytest
from rclpy.parameter import Parameter

from usx_ros.nodes.common import load_calibration
from usx_ros.params import ParameterError, declare_params, param, specs

pytestmark = pytest.mark.ros


@dataclass(frozen=True)
class Schema:
    rate_hz: float = param(30.0, "frame rate", min_value=1.0, max_value=120.0)
    mode: str = param("mean", "compounding", choices=("mean", "maximum", "latest"))
    frame: str = param("lbr_link_0", "base frame", read_only=True)
    count: int = param(5, "levels", min_value=1, max_value=5)
    xyz_mm: tuple[float, ...] = param((0.0, 0.0, 150.0), "offset", length=3)


def _node(ros_context, overrides=()):
    import rclpy

    return rclpy.create_node(
        "params_under_test", context=ros_context, parameter_overrides=list(overrides)
    )


def test_defaults_typed_access_and_descriptors(ros_context):
    node = _node(ros_context)
    try:
        p = declare_params(node, Schema)
        assert p == Schema() and node.params is p
        assert p.xyz_mm == (0.0, 0.0, 150.0) and p.rate_hz == 30.0
        with pytest.raises(FrozenInstanceError):
            p.rate_hz = 1.0
        d = node.describe_parameter("rate_hz")
        assert d.description == "frame rate"
        assert d.floating_point_range[0].to_value == 120.0
        assert node.describe_parameter("frame").read_only
        assert [s.type_name for s in specs(Schema)][-1] == "float[3]"
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (Parameter("rate_hz", value=500.0), r"parameter 'rate_hz': .*(120|range)"),
        (Parameter("mode", value="median"), r"expected one of \['mean', 'maximum', 'latest'\]"),
        (Parameter("count", value=0), r"parameter 'count': .*(1|range)"),
        (Parameter("xyz_mm", value=[1.0, 2.0]), r"'xyz_mm': expected 3 values, got 2"),
        (Parameter("rate_hz", value="fast"), r"parameter 'rate_hz'"),
    ],
)
def test_invalid_startup_values_raise(ros_context, override, message):
    node = _node(ros_context, [override])
    try:
        with pytest.raises(ParameterError, match=message):
            declare_params(node, Schema)
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (Parameter("mode", value="median"), r"expected one of"),
        (Parameter("count", value=9), r"(expected <= 5|out of range)"),
        (Parameter("frame", value="world"), r"read-only"),
        (Parameter("rate_hz", value=True), r"(expected float|Wrong parameter type)"),
    ],
)
def test_runtime_changes_are_validated(ros_context, change, reason):
    node = _node(ros_context)
    try:
        declare_params(node, Schema)
        ok = node.set_parameters([Parameter("mode", value="maximum")])[0]
        assert ok.successful and node.params.mode == "maximum"
        bad = node.set_parameters([change])[0]
        assert not bad.successful
        assert re.search(reason, bad.reason), bad.reason
        assert node.params.mode == "maximum" and node.params.frame == "lbr_link_0"
    finally:
        node.destroy_node()


def test_a_default_that_breaks_its_own_schema_is_refused():
    @dataclass(frozen=True)
    class Bad:
        rate_hz: float = param(1, "an int written for a float")

    with pytest.raises(TypeError, match=r"Bad.rate_hz: write the default as 1.0"):
        specs(Bad)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, r"parameter 'probe_calibration': no such file"),
        ("probe_calibration: [1, 2", r"probe.yaml: not valid YAML"),
        ("probe_calibration: {image: {spacing_mm: [0.1]}}", r"needs spacing_mm and origin_px"),
        ("probe_calibration: {image: {spacing_mm: [0.1, 0.1], width_px: 8}, x: 1}", r"unknown"),
        (
            "probe_calibration: {image: {spacing_mm: [150, 150], width_px: 8}}",
            r"implausible lateral pixel spacing 150.0 mm/px",
        ),
    ],
)
def test_bad_calibration_file_fails_with_one_line(tmp_path, text, message):
    path = tmp_path / "probe.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ParameterError, match=message) as info:
        load_calibration(str(path))
    assert "\n" not in str(info.value)


def test_shipped_calibration_keeps_its_numbers():
    cal = load_calibration("")
    assert cal.image.spacing_mm == (0.15, 0.15) and cal.image.origin_px == (255.5, -0.5)
    assert cal.T_ee_probe[:3, 3].tolist() == [0.0, 0.0, 150.0]
