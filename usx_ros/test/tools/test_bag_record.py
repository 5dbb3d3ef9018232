"""bag_record's bag per start: names, numbering and its parameters."""

from __future__ import annotations

import pytest

from usx_ros.tools.bag_record import BagRecorder, next_bag_path

pytestmark = pytest.mark.ros

T0 = 1_796_550_600.0  # 2026-12-06T09:50:00Z


def test_first_bag_is_numbered_001_with_its_utc_start(tmp_path):
    assert next_bag_path(tmp_path / "new", T0).name == "001_20261206T095000Z"


def test_next_bag_follows_the_highest_number_whatever_the_clock(tmp_path):
    for name in ("001_20261206T095000Z", "007_20261206T090000Z", "notes", "3_x"):
        (tmp_path / name).mkdir()
    assert next_bag_path(tmp_path, T0 - 3600).name == "008_20261206T085000Z"


def test_each_recorder_start_writes_a_new_bag(ros_context, tmp_path):
    paths = []
    for _ in range(2):
        node = BagRecorder(
            context=ros_context, parameter_overrides=_overrides(bag_dir=str(tmp_path))
        )
        paths.append(node.path)
        node.destroy_node()
    assert [p.name[:4] for p in paths] == ["001_", "002_"]
    assert all((p / "metadata.yaml").is_file() for p in paths)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({}, "'output': expected a bag folder path"),
        ({"output": "/tmp/a", "bag_dir": "/tmp/b"}, "expected one of them, got both"),
    ],
)
def test_output_and_bag_dir_exclude_each_other(ros_context, overrides, match):
    from usx_ros.params import ParameterError

    with pytest.raises(ParameterError, match=match):
        BagRecorder(context=ros_context, parameter_overrides=_overrides(**overrides))


def _overrides(**values):
    from rclpy.parameter import Parameter

    return [Parameter(k, value=v) for k, v in values.items()]
