"""Two Linux network namespaces joined by a veth pair: two "hosts" on one machine.

For tests and benchmarks of a graph spread over hosts (``usx bench multihost``). Each
namespace holds one end of the veth pair with an address in a private /24
(``10.233.<subnet>.1`` and ``.2``), its loopback up, and multicast routed to loopback
only: DDS discovery multicast then finds the processes of one namespace, as on one
host, but never crosses the link; the other side is reached only through the peers
named in ``ROS_STATIC_PEERS``, as between hosts whose network drops multicast.

Needs root and iproute2 (``ip``); :func:`unavailable` says why not before anything is
created. Everything created is removed by :meth:`NamespacePair.close` (idempotent), and
deleting a namespace deletes its veth end and with it the pair.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass


def unavailable() -> str | None:
    """Why two namespaces cannot be built here (None when they can)."""
    if os.name != "posix" or not os.path.isdir("/proc/self/ns"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (run as root or in a CI container with root)"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2 ('ip'), which is not installed"
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if res.returncode != 0:
        return f"'ip netns' does not work here: {res.stderr.strip() or res.returncode}"
    return None


def namespaces() -> set[str]:
    """Names of the network namespaces that ``ip netns`` knows."""
    res = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in res.stdout.splitlines() if line.strip()}


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = ["ip", *args] if ns is None else ["ip", "-n", ns, *args]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise OSError(f"'{' '.join(cmd)}' failed: {res.stderr.strip()}")


@dataclass
class NamespacePair:
    """Namespaces ``a`` and ``b``, veth ends ``a_if``/``b_if``, addresses ``a_ip``/``b_ip``.

    Build with :meth:`create`; use as a context manager or call :meth:`close`.
    """

    a: str
    b: str
    a_if: str
    b_if: str
    a_ip: str
    b_ip: str
    prefix_len: int = 24

    @classmethod
    def create(cls, tag: str, subnet: int) -> NamespacePair:
        """Build the pair ``usx<tag>a``/``usx<tag>b`` on ``10.233.<subnet>.0/24``.

        Args:
            tag: short unique suffix (digits/letters; interface names hold 15 characters).
            subnet: third octet of the private /24, 0..255.

        Raises:
            ValueError: a bad tag or subnet.
            OSError: an ``ip`` command failed (what was built is removed again).
        """
        if not tag.isalnum() or len(tag) > 8:
            raise ValueError(f"tag: expected 1-8 letters/digits, got {tag!r}")
        if not 0 <= subnet <= 255:
            raise ValueError(f"subnet: expected 0..255, got {subnet}")
        net = f"10.233.{subnet}"
        pair = cls(f"usx{tag}a", f"usx{tag}b", f"usx{tag}va", f"usx{tag}vb", f"{net}.1", f"{net}.2")
        try:
            pair._build()
        except BaseException:
            pair.close()
            raise
        return pair

    def _build(self) -> None:
        _ip("netns", "add", self.a)
        _ip("netns", "add", self.b)
        # Created inside a and moved to b: nothing ever appears in the caller's namespace.
        _ip("link", "add", self.a_if, "type", "veth", "peer", "name", self.b_if, ns=self.a)
        _ip("link", "set", self.b_if, "netns", self.b, ns=self.a)
        for ns, ifname, addr in ((self.a, self.a_if, self.a_ip), (self.b, self.b_if, self.b_ip)):
            _ip("addr", "add", f"{addr}/{self.prefix_len}", "dev", ifname, ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            _ip("link", "set", "lo", "multicast", "on", ns=ns)
            _ip("link", "set", ifname, "up", ns=ns)
            # DDS discovery multicast stays inside the namespace (see the module docstring).
            _ip("route", "add", "224.0.0.0/4", "dev", "lo", ns=ns)

    def exec_prefix(self, ns: str) -> list[str]:
        """Command prefix that runs a program inside namespace ``ns``."""
        if ns not in (self.a, self.b):
            raise ValueError(f"unknown namespace {ns!r}; expected {self.a!r} or {self.b!r}")
        return ["ip", "netns", "exec", ns]

    def set_link(self, up: bool) -> None:
        """Take the link down (both ends, as a pulled cable) or bring it back up."""
        state = "up" if up else "down"
        _ip("link", "set", self.a_if, state, ns=self.a)
        _ip("link", "set", self.b_if, state, ns=self.b)

    def rx_bytes(self, ns: str) -> int:
        """Bytes received so far by the veth end in namespace ``ns``."""
        ifname = {self.a: self.a_if, self.b: self.b_if}[ns]
        res = subprocess.run(
            [*self.exec_prefix(ns), "cat", f"/sys/class/net/{ifname}/statistics/rx_bytes"],
            capture_output=True,
            text=True,
            check=True,
        )
        return int(res.stdout)

    def close(self) -> None:
        """Delete both namespaces (and with them the veth pair); idempotent."""
        for ns in (self.a, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def __enter__(self) -> NamespacePair:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
