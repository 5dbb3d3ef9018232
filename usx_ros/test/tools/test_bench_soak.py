"""usx bench soak: argument checks, and a short soak of the launched phantom graph."""

from __future__ import annotations

import argparse

import pytest

from usx_ros.tools import bench_soak

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def _args(**kw) -> argparse.Namespace:
    base = dict(rate_hz=60.0, minutes=0.5, sample_s=2.0, sweep_speed_mm_s=50.0, finish_s=120.0)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rate_hz": 0.5}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 0.5"),
        ({"rate_hz": 500.0}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 500.0"),
        ({"minutes": 0.0}, r"--minutes and --sample-s: expected > 0, got 0.0, 2.0"),
        ({"sample_s": -1.0}, r"--minutes and --sample-s: expected > 0, got 0.5, -1.0"),
    ],
)
def test_bad_arguments_are_refused(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        bench_soak.run(_args(**kw))


def test_short_soak_sweeps_back_to_back_and_accounts_for_every_frame() -> None:
    out = bench_soak.run(_args())
    assert out["sweeps_completed"] >= 2, out["launcher_lines"]
    assert out["reports_missing"] == 0
    assert out["frames_sent"] > 1000  # 60 Hz over two passes
    # every frame sent is placed, refused for no contact or counted as dropped
    assert (
        out["frames_placed"] + out["frames_no_contact"] + out["frames_dropped"]
        == (out["frames_sent"])
    )
    assert out["drop_fraction"] < 0.01
    assert all(n == 0 for n in out["restarts"].values()), out["launcher_lines"]
    nodes = {"phantom", "probe_tracker", "us_compounding", "xray_ingest", "completion"}
    assert nodes <= set(out["processes"]) and nodes <= set(out["rss_growth_pct_point_by_node"])
    assert all(len(series) >= 2 for series in out["processes"].values())
    assert 0.0 < out["latency_first_s"] < 30.0 and 0.0 < out["latency_last_s"] < 30.0
