"""usx bench final: bad arguments and bags without a finished sweep are refused by name."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
from std_msgs.msg import Header

from usx_ros.conversions import points_mm_to_cloud
from usx_ros.tools import bench_final
from usx_ros.tools.bag import BagWriter


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"bag": "none", "runs": 5, "samples": 1, **kw})


def _bone_only_bag(path) -> str:
    cloud = points_mm_to_cloud(np.zeros((20, 3)), Header(frame_id="lbr_link_0"))
    with BagWriter(path) as bag:
        bag.write("/usx/bone_points", cloud, stamp_ns=1)
    return str(path)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"runs": 0}, r"--runs: expected >= 1, got 0"),
        ({"samples": -1}, r"--samples: expected >= 0, got -1"),
        ({"bag": "/nonexistent/bag"}, r"/nonexistent/bag is not a rosbag2 folder"),
        ("bone_only", r"has no /usx/xray, /usx/xray_points: record a finished sweep"),
    ],
    ids=["runs", "samples", "no_bag", "no_xray"],
)
def test_refused(tmp_path, kw, message) -> None:
    if kw == "bone_only":
        kw = {"bag": _bone_only_bag(tmp_path / "bag")}
    with pytest.raises(ValueError, match=message):
        bench_final.run(_args(**kw))
