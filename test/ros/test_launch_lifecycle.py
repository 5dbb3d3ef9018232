"""`usx launch phantom` brings the managed nodes up through their lifecycles, in graph order;
an invalid parameter fails its node's configure and stops the graph with exit code 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONFIG = Path(__file__).resolve().parents[2] / "config" / "phantom.yaml"
USX = Path(sys.executable).parent / "usx"


def _config(tmp_path, **xray_ingest) -> Path:
    params = yaml.safe_load(CONFIG.read_text())
    params["phantom"]["ros__parameters"].update(start_delay_s=600.0)  # no sweep needed
    params["igtl_bridge"]["ros__parameters"]["enabled"] = False
    params["xray_ingest"]["ros__parameters"].update(xray_ingest)
    cfg = tmp_path / "phantom.yaml"
    cfg.write_text(yaml.safe_dump(params))
    return cfg


def _launch(cfg: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(USX), "launch", "phantom", "--config", str(cfg), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,  # its own process group: the node processes die with it
        # started as a CI runner's background job is: SIGINT ignored, which the launcher
        # must undo to stop on it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


def _finish(proc: subprocess.Popen, timeout_s: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGUSR1)  # the launcher prints its threads' stacks
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        pytest.fail(f"the launcher did not stop: {out[-3000:]}")
    return out


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_an_invalid_parameter_fails_configure_and_stops_the_graph(tmp_path, isolated) -> None:
    cfg = _config(tmp_path, xray_xyz_mm=[0.0, 1.0])  # 2 values where 3 are expected
    proc = _launch(cfg, *(["--isolated"] if isolated else []))
    out = _finish(proc, 120.0)
    assert proc.returncode == 2, out[-3000:]
    assert "parameter 'xray_xyz_mm': expected 3 values, got 2" in out, out[-3000:]
    if isolated:  # the node says why, the launcher which node
        assert "invalid parameter: parameter 'xray_xyz_mm'" in out
        assert "usx launch: xray_ingest failed to configure" in out
    else:
        assert "usx launch: node failed to start: parameter 'xray_xyz_mm'" in out


def test_the_isolated_graph_comes_up_active_in_order(ros_node, tmp_path) -> None:
    import time

    from usx_ros.graph import graph
    from usx_ros.tools.lifecycle_manager import LifecycleError, LifecycleManager

    managed = [d.name for d in graph("phantom") if d.managed]
    proc = _launch(_config(tmp_path), "--isolated")
    manager = LifecycleManager(ros_node, timeout_s=5.0)

    def states() -> set[str]:
        try:
            return {manager.state(n) for n in managed}
        except LifecycleError:  # not started yet
            return set()

    try:
        deadline = time.monotonic() + 120.0
        while states() != {"active"} and time.monotonic() < deadline:
            assert proc.poll() is None
        assert states() == {"active"}
    finally:
        proc.send_signal(signal.SIGINT)
        out = _finish(proc, 60.0)
    order = [line.split()[2] for line in out.splitlines() if line.endswith(" active")]
    assert order == managed, out[-3000:]  # one after the other, in graph order
    assert proc.returncode == 0, out[-3000:]  # a clean stop on SIGINT
