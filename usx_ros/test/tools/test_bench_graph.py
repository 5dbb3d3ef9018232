"""usx bench graph: arguments are checked before any graph starts."""

from __future__ import annotations

import argparse

import pytest

from usx_ros.tools import bench_graph


def _args(**kw) -> argparse.Namespace:
    base = dict(
        rate_hz=30.0, sweeps=1, sample_s=1.0, timeout=300.0, weights_full=None, weights_us_only=None
    )
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rate_hz": 0.5}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 0.5"),
        ({"rate_hz": 240.0}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 240.0"),
        ({"sweeps": 0}, r"--sweeps: expected 1..20, got 0"),
    ],
)
def test_bad_arguments_are_refused(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        bench_graph.run(_args(**kw))


def test_medians_over_sweeps() -> None:
    def sweep(end_s, l1_s, dropped) -> dict:
        return dict(
            rate_hz=60.0,
            sweep_end_to_spine_s=end_s,
            level_ready_s={"L1": l1_s},
            frames_sent=100,
            frames_placed=100 - dropped,
            frames_dropped=dropped,
            drop_fraction=dropped / 100,
            mean_cd_l1_mm=1.0,
        )

    got = bench_graph._medians([sweep(1.0, 0.2, 0), sweep(3.0, None, 2), sweep(2.0, 0.4, 1)])
    assert got["sweep_end_to_spine_s"] == 2.0
    assert got["level_ready_s"] == {"L1": pytest.approx(0.3)}  # a level never ready: left out
    assert (got["frames_sent"], got["frames_dropped"], got["drop_fraction"]) == (300, 3, 0.01)
