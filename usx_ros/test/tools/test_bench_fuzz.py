"""usx bench fuzz: argument checks, and a short run: no crash, every message counted.

The short run once failed in the full suite when another graph held OpenIGTLink's port:
the bench's ``-p port:=0`` lost to the parameter file, igtl_bridge could not serve and
subscribed to nothing. The test now holds that port itself while the bench runs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from usx_ros.tools import bench_fuzz
from usx_ros.tools.fuzz import SERVICES, TOPICS

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_bad_message_count_is_refused() -> None:
    with pytest.raises(ValueError, match="--messages: expected >= 1, got 0"):
        bench_fuzz.run(argparse.Namespace(messages=0, seed=0, settle_s=0.5, service_calls=0))


def test_bad_service_call_count_is_refused() -> None:
    with pytest.raises(ValueError, match="--service-calls: expected >= 0, got -1"):
        bench_fuzz.run(argparse.Namespace(messages=1, seed=0, settle_s=0.5, service_calls=-1))


def test_service_requests_are_of_the_services_types() -> None:
    import numpy as np

    from usx_ros.tools.fuzz import SERVICES

    rng = np.random.default_rng(0)
    for name, (srv, make) in SERVICES.items():
        for _ in range(20):
            assert isinstance(make(rng), srv.Request), name


def test_fuzzed_inputs_crash_nothing_and_are_all_counted() -> None:
    # Its own process and DDS domain: the session's transient-local publishers on the same
    # topics would otherwise reach the fuzzed nodes too.
    env = {
        **os.environ,
        "ROS_DOMAIN_ID": str((int(os.environ.get("ROS_DOMAIN_ID", "0")) + 7) % 200),
    }
    usx = Path(sys.executable).parent / "usx"
    with socket.socket() as held:  # config/phantom.yaml's OpenIGTLink port, taken
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            held.bind(("127.0.0.1", 18944))
            held.listen()
        except OSError:
            pass  # another graph of the session serves on it: taken all the same
        out = subprocess.run(
            [
                str(usx),
                "bench",
                "fuzz",
                "--messages",
                "25",
                "--service-calls",
                "40",
                "--seed",
                "7",
                "--json",
            ],
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
    assert set(res["services"]) == set(SERVICES)
    calls = sum(r["calls"] for r in res["services"].values())
    assert calls == 40 and all(r["answered"] == r["calls"] for r in res["services"].values())
