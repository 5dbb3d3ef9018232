"""A usx graph started with default settings is reachable from this host only.

The default Fast DDS profile binds UDP to loopback (``usx_ros.dds``); a participant in
another network namespace, joined to this one by a veth pair, discovers a node started
with the multi-host setting and none started with the default.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from usx_ros.dds import PROFILE_VARS

pytestmark = pytest.mark.ros

_DISCOVERY_VARS = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_STATIC_PEERS", "ROS_LOCALHOST_ONLY")


def _env(**extra: str) -> dict[str, str]:
    """This environment without any DDS or discovery choice (what a user's shell has)."""
    drop = (*PROFILE_VARS, *_DISCOVERY_VARS)
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(extra)
    return env


def _start_node(name: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "usx_ros.nodes.probe_tracker",
            "--ros-args",
            "-r",
            f"__node:={name}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.communicate()[0]


def _inet_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, local address, port) of every IPv4 socket the process holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    out = []
    for proto in ("udp", "tcp"):
        for line in Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ip_hex, port_hex = fields[1].split(":")
                ip = socket.inet_ntoa(struct.pack("<I", int(ip_hex, 16)))
                out.append((proto, ip, int(port_hex, 16)))
    return out


def test_default_node_binds_loopback_only(ros_node) -> None:
    from usx_ros.testing import spin_until

    name = f"exposure_default_{os.getpid()}"
    proc = _start_node(name, _env())
    try:
        up = spin_until(
            ros_node,
            lambda: name in ros_node.get_node_names() or proc.poll() is not None,
            timeout_s=30.0,
        )
        assert up and proc.poll() is None, f"node did not come up:\n{_stop(proc)}"
        socks = _inet_sockets(proc.pid)
    finally:
        out = _stop(proc)
    assert socks, f"no IPv4 socket found for a discovered node:\n{out}"
    exposed = [
        s for s in socks if s[1] != "127.0.0.1" and not ipaddress.ip_address(s[1]).is_multicast
    ]
    assert not exposed, f"sockets bound beyond loopback: {exposed} (all: {socks})"


_LISTENER = textwrap.dedent(
    """
    import sys, time
    from usx_ros.dds import configure_dds
    configure_dds()
    import rclpy
    rclpy.init()
    node = rclpy.create_node("exposure_listener")
    want, seen, deadline = sys.argv[1], set(), time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
        seen.update(node.get_node_names())
        if want in seen:
            # participants announce themselves together: one more round of discovery
            deadline = min(deadline, time.monotonic() + 2.0)
    print("SEEN", " ".join(sorted(seen)), flush=True)
    """
)


@pytest.fixture
def netns():
    """A network namespace joined to this one by a veth pair: (name, host address)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2 ('ip'); not available here")
    tag = os.getpid() % 10000
    ns, host_if, ns_if = f"usxexp{tag}", f"uxh{tag}", f"uxn{tag}"
    net = f"10.213.{tag % 250}"
    setup = [
        ["ip", "netns", "add", ns],
        ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
        ["ip", "link", "set", ns_if, "netns", ns],
        ["ip", "addr", "add", f"{net}.1/24", "dev", host_if],
        ["ip", "link", "set", host_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/24", "dev", ns_if],
        ["ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
    ]
    try:
        for cmd in setup:
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                pytest.skip(f"cannot build the namespace ({' '.join(cmd)}): {res.stderr.strip()}")
        yield ns, f"{net}.1"
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_other_namespace_sees_only_the_multihost_node(netns) -> None:
    ns, host_ip = netns
    default_name = f"exposure_local_{os.getpid()}"
    network_name = f"exposure_network_{os.getpid()}"
    local = _start_node(default_name, _env())
    # the positive control: the same node with the documented multi-host setting
    remote = _start_node(network_name, _env(ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET"))
    try:
        listener = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", _LISTENER, network_name, "30"],
            capture_output=True,
            text=True,
            timeout=60,
            env=_env(ROS_AUTOMATIC_DISCOVERY_RANGE="SUBNET", ROS_STATIC_PEERS=host_ip),
        )
    finally:
        outs = [_stop(local), _stop(remote)]
    seen_line = [ln for ln in listener.stdout.splitlines() if ln.startswith("SEEN")]
    assert seen_line, f"listener failed:\n{listener.stdout}\n{listener.stderr}\n{outs}"
    seen = set(seen_line[-1].split()[1:])
    assert network_name in seen, f"the multi-host node was not discovered: {seen}"
    assert default_name not in seen, f"the default node is visible from another host: {seen}"
