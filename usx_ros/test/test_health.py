"""Bone clouds checked at the boundary: the points, or a counted reason."""

from __future__ import annotations

import numpy as np
import pytest
from std_msgs.msg import Header

from usx_ros.conversions import points_mm_to_cloud
from usx_ros.health import InputHealth, bone_points_or_reject


class _Log:
    def warning(self, *_a, **_k) -> None:
        pass


def _cloud(n: int, frame: str = "lbr_link_0"):
    pts = np.arange(3 * n, dtype=np.float64).reshape(n, 3)
    return points_mm_to_cloud(pts, Header(frame_id=frame)), pts


def test_a_good_cloud_gives_its_points_in_mm() -> None:
    health = InputHealth(_Log())
    cloud, pts = _cloud(12)
    got = bone_points_or_reject(health, cloud, "lbr_link_0", "lbr_link_0", "bone", "bad", 100)
    np.testing.assert_allclose(got, pts, atol=1e-3)  # float32 metres on the wire
    assert not health.counts


@pytest.mark.parametrize(
    ("n", "frame", "max_points", "reason", "detail"),
    [
        (12, "map", None, "wrong_frame", "bone in 'map'"),
        (12, "lbr_link_0", 11, "too_many_points", "bone: 12 points (max_points 11)"),
        (9, "lbr_link_0", None, "bad", "only 9 bone points"),
    ],
)
def test_a_bad_cloud_is_counted_under_its_reason(n, frame, max_points, reason, detail) -> None:
    health = InputHealth(_Log())
    cloud, _ = _cloud(n, frame)
    got = bone_points_or_reject(health, cloud, frame, "lbr_link_0", "bone", "bad", max_points)
    assert got is None and dict(health.counts) == {reason: 1}
    assert health.last_detail[reason] == detail
