"""PointCloud2 packing and unit conversion at the ROS boundary."""

from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from usx_ros.conversions import (
    array_to_cloud,
    cloud_to_array,
    m_to_mm,
    mm_to_m,
    ns_to_stamp,
    points_mm_to_cloud,
    seconds_to_duration,
    stamp_to_ns,
    xyz_from_cloud_mm,
)

pytestmark = pytest.mark.ros


def _naive_unpack(msg: PointCloud2, name: str) -> np.ndarray:
    """Field values read byte by byte: an independent reference for cloud_to_array."""
    field = next(f for f in msg.fields if f.name == name)
    fmt = {PointField.FLOAT32: "<f4", PointField.UINT8: "u1", PointField.FLOAT64: "<f8"}
    dt = np.dtype(fmt[field.datatype])
    data = bytes(msg.data)
    return np.array(
        [
            np.frombuffer(data[i * msg.point_step + field.offset :][: dt.itemsize], dtype=dt)[0]
            for i in range(msg.width)
        ]
    )


def test_points_round_trip_in_metres():
    rng = np.random.default_rng(0)
    pts_mm = rng.normal(0, 100, size=(257, 3))
    level = rng.integers(1, 6, size=257).astype(np.uint8)
    msg = points_mm_to_cloud(pts_mm, Header(frame_id="lbr_link_0"), extra={"level": level})
    assert msg.point_step == 13 and msg.width == 257 and msg.height == 1
    assert [f.name for f in msg.fields] == ["x", "y", "z", "level"]
    np.testing.assert_allclose(_naive_unpack(msg, "x"), pts_mm[:, 0] / 1000.0, rtol=1e-6)
    np.testing.assert_array_equal(_naive_unpack(msg, "level"), level)
    np.testing.assert_allclose(xyz_from_cloud_mm(msg), pts_mm, atol=1e-3)


def test_structured_round_trip_is_exact():
    arr = np.zeros(5, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("w", "<f8")])
    arr["x"] = np.arange(5)
    arr["w"] = np.pi
    back = cloud_to_array(array_to_cloud(arr, Header()))
    assert back.tobytes() == arr.tobytes()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda m: setattr(m, "fields", m.fields[1:]), r"lacks field\(s\) \['x'\]"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "data has 47 bytes"),
        (lambda m: setattr(m, "is_bigendian", True), "big-endian"),
        (lambda m: setattr(m.fields[0], "datatype", 42), "unknown datatype 42"),
        (lambda m: setattr(m.fields[0], "count", 3), "count 3"),
        (lambda m: setattr(m.fields[2], "offset", 10), "overruns point_step"),
    ],
)
def test_malformed_clouds_are_rejected(mutate, message):
    msg = points_mm_to_cloud(np.zeros((4, 3)), Header())
    mutate(msg)
    with pytest.raises(ValueError, match=message):
        cloud_to_array(msg)


def test_nan_points_are_rejected():
    pts = np.zeros((3, 3))
    pts[1, 2] = np.nan
    with pytest.raises(ValueError, match="1 point\\(s\\) with NaN"):
        xyz_from_cloud_mm(points_mm_to_cloud(pts, Header()))


@pytest.mark.parametrize(
    ("points", "extra", "message"),
    [
        (np.zeros((4, 2)), None, r"expected \(N, 3\) points, got shape \(4, 2\)"),
        (np.zeros((4, 3)), {"level": np.zeros(3)}, r"extra field 'level' has shape \(3,\)"),
    ],
)
def test_bad_points_are_rejected(points, extra, message):
    with pytest.raises(ValueError, match=message):
        points_mm_to_cloud(points, Header(), extra=extra)


def test_units_and_time():
    assert mm_to_m(1500.0) == pytest.approx(1.5)
    assert m_to_mm(0.25) == pytest.approx(250.0)
    assert stamp_to_ns(ns_to_stamp(1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789
    d = seconds_to_duration(1.25)
    assert (d.sec, d.nanosec) == (1, 250_000_000)


def test_sweep_report_round_trip_and_bad_counts() -> None:
    from usx_model.compounding.frame_loss import FrameLoss
    from usx_ros.conversions import sweep_report_fraction, sweep_report_msg

    msg = sweep_report_msg(FrameLoss(expected=200, placed=150, no_contact=20, lost=30), Header())
    assert (msg.frames_expected, msg.frames_lost) == (200, 30)
    assert sweep_report_fraction(msg) == pytest.approx(0.15)
    msg.frames_placed = 151
    with pytest.raises(ValueError, match=r"placed \+ no_contact \+ lost == expected, got 151"):
        sweep_report_fraction(msg)
    msg.frames_placed, msg.lost_fraction = 150, 0.5
    with pytest.raises(ValueError, match=r"expected lost_fraction 0\.1500"):
        sweep_report_fraction(msg)


def test_sweep_points_coverage_by_level() -> None:
    from usx_msgs.msg import SweepPoints
    from usx_ros.conversions import sweep_points_coverage

    msg = SweepPoints(levels=["L2", "L3"], coverage=[0.25, 0.75], covered=[False, True])
    assert sweep_points_coverage(msg) == ({2: 0.25, 3: 0.75}, {2: False, 3: True}, {})
    msg.points = [10, 250]
    assert sweep_points_coverage(msg)[2] == {2: 10, 3: 250}


@pytest.mark.parametrize(
    ("levels", "coverage", "covered", "message"),
    [
        (["L1", "L2"], [0.5], [True, True], "equal length, got 2, 1, 2, 0"),
        (["L6"], [0.5], [True], "expected levels L1..L5, got 'L6'"),
        (["3"], [0.5], [True], "expected levels L1..L5, got '3'"),
        (["L1", "L1"], [0.5, 0.5], [True, True], r"distinct levels, got \['L1', 'L1'\]"),
        (["L4"], [1.5], [True], "coverage in 0..1, got 1.5 for L4"),
        (["L4"], [float("nan")], [True], "coverage in 0..1, got nan for L4"),
        (["L1", "L2"], [0.5, 0.5], [True, True], "points"),
    ],
)
def test_sweep_points_coverage_rejects(levels, coverage, covered, message) -> None:
    from usx_msgs.msg import SweepPoints
    from usx_ros.conversions import sweep_points_coverage

    msg = SweepPoints(levels=levels, coverage=coverage, covered=covered)
    if message.startswith("points"):
        msg.points, message = [1], "equal length, got 2, 2, 2, 1"
    with pytest.raises(ValueError, match=message):
        sweep_points_coverage(msg)
