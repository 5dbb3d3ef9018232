"""`usx demo` live and then `--replay --check` on a short sweep: the replay places the
same frames as the recording (their stamp digests agree) and reproduces its completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONFIG = Path(__file__).resolve().parents[2] / "config" / "phantom.yaml"


def _demo(*args: str) -> subprocess.CompletedProcess:
    usx = Path(sys.executable).parent / "usx"
    # A domain of its own (the session's is 100-199, conftest.py): the graph's node names
    # stay in discovery for a while after its processes end, and must not look like
    # another test's nodes.
    env = {**os.environ, "ROS_DOMAIN_ID": str(200 + os.getpid() % 30)}
    return subprocess.run(
        [str(usx), "demo", "--timeout", "200", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_a_replayed_demo_places_the_same_frames_and_reproduces(tmp_path):
    params = yaml.safe_load(CONFIG.read_text())
    # Two seconds of frames keep the test quick; everything else as shipped.
    params["phantom"]["ros__parameters"].update(
        n_frames=60, start_delay_s=1.0, lateral_offsets_mm=[0.0]
    )
    cfg = tmp_path / "phantom.yaml"
    cfg.write_text(yaml.safe_dump(params))
    out = tmp_path / "demo"
    for _attempt in range(2):
        live = _demo("--out", str(out), "--config", str(cfg))
        assert live.returncode == 0, live.stdout[-3000:] + live.stderr[-3000:]
        graph = json.loads((out / "report.json").read_text())["graph"]
        # The sweep closes stop_settle_s (50 ms) after its stop: on a loaded machine the
        # last image can arrive later and is then counted outside any sweep (seen once in
        # a CI run, 0.24 s late), while the bag, which keeps the send order, replays it
        # inside. That live run cannot be the reference; one retry, then the strict check.
        # (Issue 24's sweep ids replace this timing with a count.)
        if graph["frames_outside_sweeps"] == 0:
            break
    replay = _demo("--out", str(out), "--config", str(cfg), "--replay", str(out / "bag"), "--check")
    assert replay.returncode == 0, replay.stdout[-3000:] + replay.stderr[-3000:]
    report = json.loads((out / "replay_report.json").read_text())
    repro = report["reproduction"]
    # Every frame of the live run was placed (the phantom starts a pass only once the start
    # service confirms a live pose stream), and the replay placed the same ones (the bag
    # keeps the send order, so the last image still precedes the stop edge).
    assert repro["frames"] == {"recorded_placed": 60, "replay_placed": 60, "same_frames": True}
    assert repro["within_0_1mm"] and repro["worst_mm"] <= 0.1
    assert set(repro["max_point_distance_mm"]) == set(report["levels"])
