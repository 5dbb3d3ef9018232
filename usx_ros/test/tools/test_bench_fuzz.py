"""usx bench fuzz, short: no crash, every fuzzed message counted by its subscribers.

Runs the command in its own process and DDS domain: the test session's own publishers on
the same topics (transient-local) would otherwise reach the fuzzed nodes too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from usx_ros.tools import bench_fuzz
from usx_ros.tools.fuzz import TOPICS

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_fuzzed_inputs_crash_nothing_and_are_all_counted() -> None:
    usx = Path(sys.executable).parent / "usx"
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str((int(os.environ.get("ROS_DOMAIN_ID", "0")) + 7) % 200),
    }
    out = subprocess.run(
        [str(usx), "bench", "fuzz", "--messages", "25", "--seed", "7", "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout)
    assert res["crashes"] == 0, res
    assert set(res["topics"]) == set(TOPICS)
    for topic, r in res["topics"].items():
        assert r["crashes"] == 0 and r["uncounted"] == 0, (topic, r)
        assert r["counted_bad"] + r["accepted"] >= r["messages"], (topic, r)


def test_bad_message_count_is_refused() -> None:
    with pytest.raises(ValueError, match="--messages: expected >= 1, got 0"):
        bench_fuzz.run(argparse.Namespace(messages=0, seed=0, settle_s=0.5))
