"""Rerun's own gRPC server and web viewer, for ``usx view --serve``.

The server is the ``rerun`` binary that ships inside the rerun-sdk wheel, run as
``rerun --serve-web --bind ADDR --port P --web-viewer-port W``: it buffers what the
logging process sends it (for viewers that connect late) and hosts the web viewer (HTML +
WebAssembly from the wheel; no internet needed). The logging process connects to it with
``RecordingStream.connect_grpc``.

Why not ``rr.serve_grpc()`` + ``rr.serve_web_viewer()`` in this process: in rerun-sdk 0.41
both listen on every interface (0.0.0.0) and take no bind address. The binary is the same
server code with ``--bind``, so the viewer stays on loopback by default, like the ROS graph
(README, network exposure). Nothing it serves is authenticated.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

#: rerun's own defaults
DEFAULT_GRPC_PORT = 9876
DEFAULT_WEB_PORT = 9090


def rerun_binary() -> Path:
    """The ``rerun`` executable of the installed rerun-sdk.

    Raises:
        OSError: the wheel has no binary (an sdist build without the viewer).
    """
    import rerun_cli

    path = Path(rerun_cli.__file__).with_name("rerun")
    if not path.is_file():
        raise OSError(f"rerun-sdk has no rerun binary at {path}")
    return path


def telemetry_off_env() -> dict[str, str]:
    """The environment for the rerun server, its anonymous usage reports switched off.

    The rerun binary reports viewer usage to its developers unless its analytics config
    says no, and an intra-operative viewer must not phone home. Rather than change the
    user's own rerun config, the server runs with ``XDG_CONFIG_HOME`` pointing at a usx
    folder whose rerun analytics config is disabled (by ``rerun analytics disable``).
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    config_home = cache / "usx" / "rerun-config"
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    config = config_home / "rerun" / "analytics.json"
    try:
        disabled = json.loads(config.read_text())["analytics_enabled"] is False
    except (OSError, ValueError, KeyError, TypeError):
        disabled = False
    if not disabled:
        subprocess.run(
            [str(rerun_binary()), "analytics", "disable"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=30,
            check=True,
        )
    env["RUST_LOG"] = os.environ.get("RUST_LOG", "warn")
    return env


def _check_address(
    bind: str, ports: dict[str, int]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        addr = ipaddress.ip_address(bind)
    except ValueError:
        raise ValueError(f"--bind: expected an IP address, got {bind!r}") from None
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ValueError(f"{name}: expected a port in 1..65535, got {port}")
    if len(set(ports.values())) < len(ports):
        raise ValueError(f"expected different ports, got {' and '.join(map(str, ports.values()))}")
    return addr


def _port_free(addr: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # SO_REUSEADDR as the server sets it: a port in TIME_WAIT is free, a listener is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((addr, port))
        except OSError:
            return False
    return True


def _accepts(addr: str, port: int) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=0.5):
            return True
    except OSError:
        return False


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class RerunServer:
    """The ``rerun --serve-web`` process, as a context manager.

    Args:
        bind: the IP address both servers listen on (``0.0.0.0``/``::``: every interface).
        grpc_port: where the logging SDK and the viewers connect.
        web_port: where the web viewer is served over HTTP.
        start_timeout_s: how long to wait for both ports to accept connections.

    Raises (on enter):
        ValueError: a bad address or port.
        OSError: a port is in use, or the server exited or did not listen in time.
    """

    def __init__(
        self,
        bind: str = "127.0.0.1",
        grpc_port: int = DEFAULT_GRPC_PORT,
        web_port: int = DEFAULT_WEB_PORT,
        start_timeout_s: float = 30.0,
    ) -> None:
        addr = _check_address(bind, {"--port": grpc_port, "--web-port": web_port})
        self.bind, self.grpc_port, self.web_port = bind, grpc_port, web_port
        self._start_timeout_s = start_timeout_s
        wildcard = addr.is_unspecified
        # Where this machine reaches the servers, and the host a browser is told to use.
        self._local = ("::1" if addr.version == 6 else "127.0.0.1") if wildcard else bind
        host = socket.gethostname() if wildcard else bind
        self._host = f"[{host}]" if ":" in host else host
        self._proc: subprocess.Popen | None = None

    @property
    def grpc_url(self) -> str:
        """The gRPC proxy URL, as a viewer elsewhere connects to it."""
        return f"rerun+http://{self._host}:{self.grpc_port}/proxy"

    @property
    def local_grpc_url(self) -> str:
        """The gRPC proxy URL for a logging process on this machine."""
        local = f"[{self._local}]" if ":" in self._local else self._local
        return f"rerun+http://{local}:{self.grpc_port}/proxy"

    @property
    def viewer_url(self) -> str:
        """The web viewer, connected to the gRPC server: what to open in a browser."""
        return f"http://{self._host}:{self.web_port}/?url={quote(self.grpc_url, safe='')}"

    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The server's exit code once it has exited (None while it runs)."""
        return None if self._proc is None else self._proc.poll()

    def wait(self) -> int:
        """Block until the server exits (a signal handler's exception ends the wait)."""
        return self._proc.wait()

    def __enter__(self) -> RerunServer:
        for port in (self.grpc_port, self.web_port):
            if not _port_free(self.bind, port):
                raise OSError(f"port {port} on {self.bind} is in use")
        cmd = [
            str(rerun_binary()),
            "--serve-web",
            "--bind",
            self.bind,
            "--port",
            str(self.grpc_port),
            "--web-viewer-port",
            str(self.web_port),
        ]
        if self._host not in ("127.0.0.1", "localhost", "[::1]"):
            # The gRPC server answers browsers from localhost pages only, unless told otherwise.
            cmd += ["--cors-allow-origin", f"http://{self._host}:{self.web_port}"]
        env = telemetry_off_env()
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,  # its first-run banner: our stdout carries one JSON line
            env=env,
            start_new_session=True,  # a terminal's Ctrl-C reaches us, and we stop it in order
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        try:
            self._wait_listening()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + self._start_timeout_s
        pending = [self.grpc_port, self.web_port]
        while pending:
            if not self.running():
                raise OSError(
                    f"rerun server exited (code {self._proc.returncode}) before listening on "
                    f"{self.bind}:{self.grpc_port}/{self.web_port}"
                )
            pending = [p for p in pending if not _accepts(self._local, p)]
            if pending and time.monotonic() >= deadline:
                raise OSError(
                    f"rerun server not listening on {self.bind}:{pending} after "
                    f"{self._start_timeout_s:g} s"
                )
            if pending:
                time.sleep(0.1)

    def close(self) -> None:
        """Stop the server (idempotent)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def __exit__(self, *exc) -> None:
        self.close()
