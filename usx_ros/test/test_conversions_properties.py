"""Property-based tests of the ROS boundary: any message either converts exactly or is
refused with ValueError (the one error a node counts); nothing else escapes."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image, PointCloud2, PointField
from std_msgs.msg import Header

from usx_ros.conversions import (
    cloud_to_array,
    image_to_array,
    points_mm_to_cloud,
    sweep_report_fraction,
    xyz_from_cloud_mm,
)

FAST = settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

finite_points = st.integers(0, 64).flatmap(
    lambda n: st.lists(
        st.tuples(*[st.floats(-1e5, 1e5, allow_nan=False, width=32)] * 3), min_size=n, max_size=n
    )
)


@FAST
@given(finite_points)
def test_finite_points_round_trip(points) -> None:
    pts = np.array(points, dtype=np.float64).reshape(-1, 3)
    back = xyz_from_cloud_mm(points_mm_to_cloud(pts, Header()))
    # metres in float32 on the wire: a relative error of float32's epsilon
    np.testing.assert_allclose(back, pts, rtol=2e-7, atol=1e-6)


@st.composite
def clouds(draw) -> PointCloud2:
    """Clouds with arbitrary (often inconsistent) layout fields and payloads."""
    names = draw(st.lists(st.sampled_from(["x", "y", "z", "level", "rgb", ""]), max_size=5))
    fields = [
        PointField(
            name=n,
            offset=draw(st.integers(0, 40)),
            datatype=draw(st.integers(0, 9)),
            count=draw(st.integers(0, 2)),
        )
        for n in names
    ]
    return PointCloud2(
        header=Header(),
        height=draw(st.integers(0, 3)),
        width=draw(st.integers(0, 8)),
        fields=fields,
        is_bigendian=draw(st.booleans()),
        point_step=draw(st.integers(0, 32)),
        row_step=draw(st.integers(0, 300)),
        data=draw(st.binary(max_size=400)),
        is_dense=draw(st.booleans()),
    )


@FAST
@given(clouds())
def test_any_cloud_converts_or_is_refused_with_value_error(msg) -> None:
    try:
        arr = cloud_to_array(msg)
    except ValueError:
        return
    assert len(arr) == int(msg.width) * int(msg.height)


@FAST
@given(
    st.sampled_from(["mono8", "8UC1", "mono16", "rgb8", "", "bgr8"]),
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(0, 50),
    st.booleans(),
    st.binary(max_size=500),
)
def test_any_image_converts_or_is_refused_with_value_error(
    encoding, height, width, step, bigendian, data
) -> None:
    msg = Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=bigendian,
        step=step,
        data=data,
    )
    try:
        img = image_to_array(msg, ("mono8", "8UC1"))
    except ValueError:
        return
    assert img.shape == (height, width) and img.dtype == np.uint8


@FAST
@given(*[st.integers(0, 2**32 - 1)] * 4, st.one_of(st.floats(-1e3, 1e3), st.just(float("nan"))))
def test_any_sweep_report_gives_a_fraction_or_value_error(
    expected, placed, no_contact, lost, fraction
) -> None:
    from usx_msgs.msg import SweepReport

    msg = SweepReport(
        frames_expected=expected,
        frames_placed=placed,
        frames_no_contact=no_contact,
        frames_lost=lost,
        lost_fraction=float(np.float32(fraction)) if np.isfinite(fraction) else fraction,
    )
    try:
        value = sweep_report_fraction(msg)
    except ValueError:
        return
    assert 0.0 <= value <= 1.0
