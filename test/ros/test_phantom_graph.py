"""The whole phantom graph, started by `usx launch phantom --isolated` in a subprocess;
this test process subscribes, late, to the transient-local completed spine."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = [pytest.mark.ros, pytest.mark.slow]

CONFIG = Path(__file__).resolve().parents[2] / "config" / "phantom.yaml"
IGTL_DEVICES = {"ProbeToBase", "USImage", *(f"Spine_L{lv}" for lv in range(1, 6))}


def test_launched_graph_publishes_the_completed_spine(ros_node, tmp_path):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import PointCloud2

    from usx_ros.conversions import cloud_to_array
    from usx_ros.diagnostics import DIAGNOSTICS_TOPIC
    from usx_ros.igtl.client import receive
    from usx_ros.igtl.messages import parse_polydata
    from usx_ros.qos import DIAGNOSTICS_QOS, RESULT_QOS
    from usx_ros.testing import spin_until

    params = yaml.safe_load(CONFIG.read_text())
    # A short sweep (2 s of frames) keeps the test quick; everything else as shipped.
    params["phantom"]["ros__parameters"].update(
        n_frames=60, start_delay_s=2.0, lateral_offsets_mm=[0.0]
    )
    with socket.create_server(("127.0.0.1", 0)) as probe:  # a free port for OpenIGTLink
        igtl_port = probe.getsockname()[1]
    params["igtl_bridge"]["ros__parameters"]["port"] = igtl_port
    cfg = tmp_path / "phantom.yaml"
    cfg.write_text(yaml.safe_dump(params))
    usx = Path(sys.executable).parent / "usx"
    proc = subprocess.Popen(
        [str(usx), "launch", "phantom", "--isolated", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ.copy(),
        start_new_session=True,  # its own process group: the node processes die with it
    )
    got: list[PointCloud2] = []
    health: dict[str, dict[str, str]] = {}  # node -> its latest diagnostic values

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for st in msg.status:
            health[st.name] = {kv.key: kv.value for kv in st.values}

    nodes = {"phantom", "probe_tracker", "us_compounding", "xray_ingest", "completion"}
    try:
        ros_node.create_subscription(PointCloud2, "/usx/completed_spine", got.append, RESULT_QOS)
        ros_node.create_subscription(
            DiagnosticArray, DIAGNOSTICS_TOPIC, on_diagnostics, DIAGNOSTICS_QOS
        )
        ok = spin_until(ros_node, lambda: bool(got) or proc.poll() is not None, timeout_s=240.0)
        # an OpenIGTLink client in this (another) process, twice: a reconnecting client
        # gets the scene again
        igtl = [
            receive("127.0.0.1", igtl_port, lambda m: IGTL_DEVICES <= set(m), timeout_s=20.0)
            for _ in range(2)
        ]
        # every node of the graph reports on /diagnostics (once a second), the completion
        # node with the completion just published
        spin_until(
            ros_node,
            lambda: nodes <= set(health) and health["completion"].get("completions") != "0",
            timeout_s=10.0,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            # Kill the launcher *and* its node processes, which hold the output pipe open.
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
    assert ok and got, f"no completed spine; launcher output:\n{out[-4000:]}"
    assert nodes <= set(health), f"/diagnostics from {sorted(health)}, expected {sorted(nodes)}"
    for scene in igtl:
        assert IGTL_DEVICES <= set(scene), sorted(scene)
        assert scene["ProbeToBase"][0] == "TRANSFORM" and scene["USImage"][0] == "IMAGE"
        spine = cloud_to_array(got[-1], ("x", "y", "z", "level", "uncertainty"))
        ros_mm = 1000.0 * np.stack([spine["x"], spine["y"], spine["z"]], axis=1).astype(float)
        for lv in range(1, 6):
            points, _, scalars = parse_polydata(scene[f"Spine_L{lv}"][2])
            mine = spine["level"] == lv
            np.testing.assert_allclose(points, ros_mm[mine], atol=0.01)
            unc_mm = 1000.0 * spine["uncertainty"][mine].astype(float)
            np.testing.assert_allclose(scalars["uncertainty_mm"], unc_mm, atol=1e-4)
    for name in nodes:
        assert "rejected" in health[name] and "accepted" in health[name], (name, health[name])
    assert int(health["completion"]["completions"]) >= 1
    msg = got[0]
    assert msg.header.frame_id == "lbr_link_0"
    arr = cloud_to_array(msg, ("x", "y", "z", "level", "uncertainty", "rgb"))
    xyz = np.stack([arr["x"], arr["y"], arr["z"]], axis=1)
    # Metres in the base frame: the spine lies ~0.6 m in front of the robot.
    assert 0.4 < float(np.median(xyz[:, 0])) < 0.8
    assert set(np.unique(arr["level"])) <= {1, 2, 3, 4, 5} and len(np.unique(arr["level"])) >= 1
    assert np.all(arr["uncertainty"] >= 0)
