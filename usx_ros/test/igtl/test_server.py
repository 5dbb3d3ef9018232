"""The OpenIGTLink server: several clients, reconnection, a client that never reads."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np

from usx_ros.igtl.client import receive
from usx_ros.igtl.messages import image_message, transform_message
from usx_ros.igtl.server import IgtlServer


def _wait(cond, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


def _pose(x: float, device: str = "ProbeToBase") -> bytes:
    T = np.eye(4)
    T[0, 3] = x
    return transform_message(device, T, 0.0)


def test_every_client_gets_the_stream_and_a_new_one_the_latest_first() -> None:
    server = IgtlServer("127.0.0.1", 0)
    try:
        server.send("ProbeToBase", _pose(1.0))
        results: list[dict] = []

        def client() -> None:
            results.append(
                receive(server.host, server.port, lambda m: "Spine_L1" in m, timeout_s=10.0)
            )

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        assert _wait(lambda: server.clients == 3)
        server.send("Spine_L1", _pose(2.0, "Spine_L1"))
        for t in threads:
            t.join(10.0)
        assert len(results) == 3
        for got in results:
            # the latest pose was sent on connect, the spine as it came
            assert got["ProbeToBase"][0] == "TRANSFORM" and got["Spine_L1"][0] == "TRANSFORM"
        # disconnected clients are dropped; a reconnecting one gets the latest again
        assert _wait(lambda: server.clients == 0)
        again = receive(server.host, server.port, lambda m: len(m) == 2, timeout_s=10.0)
        assert set(again) == {"ProbeToBase", "Spine_L1"}
        assert server.connections == 4
    finally:
        server.close()


def test_a_client_that_never_reads_does_not_block_send() -> None:
    server = IgtlServer("127.0.0.1", 0, max_queue=4)
    stuck = socket.create_connection((server.host, server.port))
    try:
        assert _wait(lambda: server.clients == 1)
        # 2.25 MB per frame: more than the socket buffers hold
        big = image_message("USImage", np.zeros((1500, 1500), np.uint8), np.eye(4), 0.0)
        t0 = time.monotonic()
        for _ in range(50):
            server.send("USImage", big)
        assert time.monotonic() - t0 < 1.0  # only enqueued
        server.send("ProbeToBase", _pose(3.0))
        # a reading client alongside still gets its data
        got = receive(server.host, server.port, lambda m: "ProbeToBase" in m, timeout_s=10.0)
        assert got["ProbeToBase"][0] == "TRANSFORM" and got["USImage"][0] == "IMAGE"
    finally:
        stuck.close()
        server.close()
