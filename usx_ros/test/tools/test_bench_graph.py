"""usx bench graph: arguments are checked before any graph starts."""

from __future__ import annotations

import argparse

import pytest

from usx_ros.tools import bench_graph


def _args(**kw) -> argparse.Namespace:
    base = dict(rate_hz=30.0, sample_s=1.0, timeout=300.0, weights_full=None, weights_us_only=None)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"rate_hz": 0.5}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 0.5"),
        ({"rate_hz": 240.0}, r"--rate-hz: expected 1..120 \(the phantom's range\), got 240.0"),
    ],
)
def test_bad_arguments_are_refused(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        bench_graph.run(_args(**kw))
