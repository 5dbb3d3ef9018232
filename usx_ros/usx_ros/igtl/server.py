"""A TCP server that sends OpenIGTLink messages to every connected client.

``pyigtl``'s own server serves one client at a time and replaces the process's SIGINT and
SIGTERM handlers, so usx runs its own: one accept thread, and per client a sender thread
with a bounded queue (the oldest message goes when a client falls behind) and a reader
thread that discards what the client sends (Slicer sends STATUS and capability queries)
and notices the disconnect. A slow or vanished client never blocks the caller: ``send``
only enqueues. A client that connects gets the latest message of every device at once.
"""

from __future__ import annotations

import socket
import threading
from collections import deque

#: A send that cannot complete within this time drops the client, s.
SEND_TIMEOUT_S = 2.0


class _Client:
    def __init__(self, sock: socket.socket, addr, max_queue: int, on_close) -> None:
        self.sock, self.addr = sock, addr
        self.queue: deque[bytes] = deque(maxlen=max_queue)
        self.cond = threading.Condition()
        self.closed = False
        self._on_close = on_close
        sock.settimeout(SEND_TIMEOUT_S)
        threading.Thread(target=self._send_loop, daemon=True).start()
        threading.Thread(target=self._read_loop, daemon=True).start()

    def put(self, data: bytes) -> None:
        with self.cond:
            self.queue.append(data)
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            if self.closed:
                return
            self.closed = True
            self.cond.notify_all()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._on_close(self)

    def _send_loop(self) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if self.closed:
                    return
                data = self.queue.popleft()
            try:
                self.sock.sendall(data)
            except OSError:
                self.close()
                return

    def _read_loop(self) -> None:
        while not self.closed:
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
        self.close()


class IgtlServer:
    """Serves OpenIGTLink on ``host:port`` (port 0: any free port, see ``port``).

    Args:
        host: bind address ("127.0.0.1": this machine only).
        port: TCP port (Slicer's default is 18944).
        max_queue: messages held per client before the oldest is dropped.

    Raises:
        OSError: the address cannot be bound (e.g. the port is taken).
    """

    def __init__(self, host: str, port: int, max_queue: int = 64) -> None:
        self._listen = socket.create_server((host, port))
        self._listen.settimeout(0.2)
        self.host, self.port = self._listen.getsockname()[:2]
        self._max_queue = max_queue
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self._latest: dict[str, bytes] = {}
        self._stop = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def send(self, device: str, data: bytes) -> None:
        """Queue one packed message for every client; it is also what a new client gets
        first for ``device``."""
        with self._lock:
            self._latest[device] = data
            clients = list(self._clients)
        for c in clients:
            c.put(data)

    def close(self) -> None:
        self._stop.set()
        self._listen.close()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            c.close()

    def _drop(self, client: _Client) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, addr = self._listen.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = _Client(sock, addr, self._max_queue, self._drop)
            with self._lock:
                self._clients.append(client)
                self.connections += 1
                latest = list(self._latest.values())
            for data in latest:
                client.put(data)
