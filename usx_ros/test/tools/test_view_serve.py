"""usx view --serve: rerun's server on the address asked for, and a clean stop on SIGTERM.
(A browser looking at the served viewer: test/ros/test_view_browser.py.)"""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from usx_ros.tools.view_serve import RerunServer

USX = Path(sys.executable).parent / "usx"


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as s:
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """Addresses with a TCP listener on ``port``."""
    return {
        c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port
    }


@pytest.mark.parametrize(
    ("bind", "grpc_port", "web_port", "message"),
    [
        ("localhost", 9876, 9090, "--bind: expected an IP address, got 'localhost'"),
        ("127.0.0.1", 0, 9090, r"--port: expected a port in 1\.\.65535, got 0"),
        ("127.0.0.1", 9876, 70000, r"--web-port: expected a port in 1\.\.65535, got 70000"),
        ("127.0.0.1", 9876, 9876, "expected different ports, got 9876 and 9876"),
    ],
)
def test_bad_address_or_port_is_refused(bind, grpc_port, web_port, message) -> None:
    with pytest.raises(ValueError, match=message):
        RerunServer(bind, grpc_port, web_port)


def test_a_port_in_use_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = RerunServer("127.0.0.1", port, _free_port())
        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            server.__enter__()
    assert not server.running()


def test_the_server_listens_on_loopback_only_and_stops() -> None:
    grpc_port, web_port = _free_port(), _free_port()
    with RerunServer("127.0.0.1", grpc_port, web_port) as server:
        assert server.running()
        assert _listening(grpc_port) == {"127.0.0.1"} and _listening(web_port) == {"127.0.0.1"}
        assert server.grpc_url == f"rerun+http://127.0.0.1:{grpc_port}/proxy"
        assert server.viewer_url == (
            f"http://127.0.0.1:{web_port}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{grpc_port}%2Fproxy"
        )
    assert not server.running()
    assert not _listening(grpc_port) and not _listening(web_port)


@pytest.mark.ros
def test_a_served_bag_prints_its_url_and_ends_cleanly_on_sigterm(tmp_path) -> None:
    import numpy as np
    from std_msgs.msg import Header

    from usx_ros.conversions import points_mm_to_cloud
    from usx_ros.tools.bag import BagWriter

    bag = tmp_path / "bag"
    with BagWriter(bag) as w:
        cloud = points_mm_to_cloud(np.zeros((5, 3)), Header(frame_id="lbr_link_0"))
        w.write("/usx/bone_points", cloud, 10**9)
    grpc_port, web_port = _free_port(), _free_port()
    args = ["--port", str(grpc_port), "--web-port", str(web_port)]
    proc = subprocess.Popen(
        [str(USX), "view", "--bag", str(bag), "--serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 60.0)
        line = proc.stdout.readline() if ready else ""
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert json.loads(line) == {
        "viewer": f"http://127.0.0.1:{web_port}/?url=rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{grpc_port}%2Fproxy",
        "grpc": f"rerun+http://127.0.0.1:{grpc_port}/proxy",
        "source": str(bag),
    }, err
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert out == "", "stdout holds the one JSON line only"
    assert not _listening(grpc_port) and not _listening(web_port), "the server stopped too"


def test_the_server_runs_with_usage_reports_off(tmp_path, monkeypatch) -> None:
    from usx_ros.tools.view_serve import rerun_binary, telemetry_off_env

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    env = telemetry_off_env()
    assert env["XDG_CONFIG_HOME"].startswith(str(tmp_path))
    shown = subprocess.run(
        [str(rerun_binary()), "analytics", "config"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(shown.stdout)["analytics_enabled"] is False
