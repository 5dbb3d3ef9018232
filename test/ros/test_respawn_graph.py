"""`usx launch phantom --isolated` notices every node exit, clean or not, restarts it and
brings it up again (configure, activate)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONFIG = Path(__file__).resolve().parents[2] / "config" / "phantom.yaml"


def _node_pid(launcher: psutil.Process, module: str) -> int | None:
    for child in launcher.children():
        try:
            if module in " ".join(child.cmdline()):
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def _wait(cond, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return False


def test_killed_and_cleanly_exited_nodes_are_reported_and_restarted(ros_node, tmp_path) -> None:
    from usx_ros.testing import spin_until

    params = yaml.safe_load(CONFIG.read_text())
    params["phantom"]["ros__parameters"].update(start_delay_s=600.0)  # no sweep needed
    params["igtl_bridge"]["ros__parameters"]["enabled"] = False
    cfg = tmp_path / "phantom.yaml"
    cfg.write_text(yaml.safe_dump(params))
    usx = Path(sys.executable).parent / "usx"
    proc = subprocess.Popen(
        [str(usx), "launch", "phantom", "--isolated", "--config", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    launcher = psutil.Process(proc.pid)
    tracker, ingest = "usx_ros.nodes.probe_tracker", "usx_ros.nodes.xray_ingest"
    try:
        # the nodes are up (past their imports, their signal handlers installed)
        names = {"probe_tracker", "xray_ingest", "us_compounding", "completion"}
        assert spin_until(ros_node, lambda: names <= set(ros_node.get_node_names()), 60.0)
        # and brought up by the launcher (configured, active) before anything is killed
        up = [f"usx launch: {n} active\n" for n in names]
        assert _wait(lambda: all(u in "".join(lines) for u in up), 60), lines
        first = _node_pid(launcher, tracker)
        os.kill(first, signal.SIGKILL)
        assert _wait(lambda: _node_pid(launcher, tracker) not in (None, first), 15), lines
        ingest_pid = _node_pid(launcher, ingest)
        os.kill(ingest_pid, signal.SIGTERM)  # a clean exit (code 0) must be noticed too
        assert _wait(lambda: _node_pid(launcher, ingest) not in (None, ingest_pid), 15), lines
        # a restarted managed node is brought up again (configured, activated)
        for node in ("probe_tracker", "xray_ingest"):
            up = f"usx launch: {node} active\n"
            assert _wait(lambda u=up: "".join(lines).count(u) >= 2, 60), lines
        assert proc.poll() is None  # the graph runs on
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        reader.join(5)
    text = "".join(lines)
    assert "node probe_tracker exited with code -9" in text and "restarting in 1 s (1/5)" in text
    assert "node xray_ingest exited with code 0" in text, text
