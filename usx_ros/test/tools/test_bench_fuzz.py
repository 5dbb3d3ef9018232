"""usx bench fuzz, short: no crash, every fuzzed message counted by its subscribers."""

from __future__ import annotations

import argparse

import pytest

from usx_ros.tools import bench_fuzz
from usx_ros.tools.fuzz import TOPICS

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_fuzzed_inputs_crash_nothing_and_are_all_counted() -> None:
    res = bench_fuzz.run(argparse.Namespace(messages=25, seed=7, settle_s=0.5))
    assert res["crashes"] == 0
    assert set(res["topics"]) == set(TOPICS)
    for topic, r in res["topics"].items():
        assert r["crashes"] == 0 and r["uncounted"] == 0, (topic, r)
        assert r["counted_bad"] + r["accepted"] >= r["messages"], (topic, r)


def test_bad_message_count_is_refused() -> None:
    with pytest.raises(ValueError, match="--messages: expected >= 1, got 0"):
        bench_fuzz.run(argparse.Namespace(messages=0, seed=0, settle_s=0.5))
