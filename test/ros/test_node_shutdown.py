"""A node process ends cleanly (exit 0, no traceback) on SIGINT and on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module", ["usx_ros.nodes.probe_tracker", "usx_ros.nodes.xray_ingest"])
def test_node_process_stops_cleanly(ros_node, module: str, sig: signal.Signals) -> None:
    from usx_ros.testing import spin_until

    # A name of its own: a node of that type from an earlier test may linger in discovery.
    name = f"{module.rsplit('.', 1)[1]}_{os.getpid()}_{sig.name.lower()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a process that hangs is sent SIGABRT below: faulthandler prints where it hung
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        up = spin_until(
            ros_node,
            lambda: name in ros_node.get_node_names() or proc.poll() is not None,
            timeout_s=30.0,
        )
        assert up and proc.poll() is None, f"{module} did not come up:\n{proc.stdout.read()}"
        proc.send_signal(sig)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            out, _ = proc.communicate(timeout=10)
            raise AssertionError(f"{module} still ran 10 s after {sig.name}:\n{out}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out


def test_an_invalid_parameter_ends_a_node_process_with_one_line() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "usx_ros.nodes.probe_tracker", "--ros-args"]
        + ["-r", f"__node:=bad_{os.getpid()}", "-p", "max_stamp_step_s:=-1.0"],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ.copy(),
    )
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    said = [line for line in text.splitlines() if "invalid parameter" in line]
    assert len(said) == 1 and "parameter 'max_stamp_step_s'" in said[0], text
    assert "Traceback" not in text
