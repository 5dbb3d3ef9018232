"""A minimal OpenIGTLink receiver: what the tests (and a quick check by hand) use."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from usx_ros.igtl.messages import parse_header

HEADER_BYTES = 58


def _read_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = b""
    while len(buf) < n:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    return buf


def receive(
    host: str,
    port: int,
    done: Callable[[dict[str, tuple[str, bytes, bytes]]], bool],
    timeout_s: float,
) -> dict[str, tuple[str, bytes, bytes]]:
    """Connect and collect messages until ``done(latest)`` or ``timeout_s``.

    Returns:
        device name -> (type, header bytes, body bytes) of its latest message.
    """
    latest: dict[str, tuple[str, bytes, bytes]] = {}
    deadline = time.monotonic() + timeout_s
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        while not done(latest) and time.monotonic() < deadline:
            try:
                head = _read_exact(sock, HEADER_BYTES, deadline)
                mtype, device, size = parse_header(head)
                body = _read_exact(sock, size, deadline)
            except TimeoutError:
                break
            latest[device] = (mtype, head, body)
    return latest
