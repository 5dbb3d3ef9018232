"""``usx bench multihost``: the phantom graph over two "hosts" and a 3 s link outage.

Two Linux network namespaces joined by a veth pair (``tools.netns``, built for the run
and deleted after it, also on Ctrl-C) stand for the robot PC and the workstation:

- robot side: phantom, probe_tracker, us_compounding (compounding beside the US
  machine, docs/architecture.md);
- workstation side: xray_ingest, completion, a bag recorder (``/us/image`` and the
  results: the B-mode frames cross the link) and a monitor participant
  (``tools.multihost_monitor``).

Every process runs with ``ROS_STATIC_PEERS`` naming the other side, so ``usx_ros.dds``
loads ``config/fastdds_network.xml``; discovery multicast stays inside each namespace,
so the sides find each other through the static peers only. One process per node, as
``ros2 launch`` runs them. The phantom's first pass waits for the completion node and a
subscriber of its result (``wait_for_links``), so the workstation side is up when the
frames start. ``--outage-at-s`` after the sweep starts (as the monitor sees it), both veth
ends go down for ``--outage-s`` and come back; the sweep goes on, and the run ends when
the completed spine of that sweep reaches the monitor.

Output: ``completed`` (a spine completion arrived after the sweep's end),
``outage_s``, ``recovered_s``, ``frames_sent``, ``frames_received``, ``frames_lost`` and
the other frame figures defined in ``tools.multihost_report``; ``frames_recorded`` (the
recorder's bag), ``link_rx_bytes`` (bytes the workstation's veth end received: each
of its two frame readers gets its own copy of every 262 kB frame over the link),
``outage_inside_sweep``, ``sweep_s``,
``sweep_end_to_spine_s`` (monitor's receive times), the compounding node's
``sweep_report`` and the completion's per-level ``status``. Without root or ``ip netns``
the run is skipped: one line on stderr and ``{"skipped": reason}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from usx_ros.tools.interrupt import sigterm_as_interrupt
from usx_ros.tools.multihost_report import Outage, frame_accounting

NAME = "multihost"
HELP = "phantom graph across two network namespaces with a link outage mid-sweep"

ROBOT_NODES = ("phantom", "probe_tracker", "us_compounding")
WORKSTATION_NODES = ("xray_ingest", "completion")
RECORDED = ["/us/image", "/usx/phantom/sweep_active", "/usx/completed_spine"]
#: Settings that would override the network profile or the discovery of the run.
_DROPPED_ENV = (
    "FASTRTPS_DEFAULT_PROFILES_FILE",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_STATIC_PEERS",
    "ROS_LOCALHOST_ONLY",
)


@dataclass(frozen=True)
class MultihostConfig:
    """One run of the bench.

    Attributes:
        sweep_s: length of the phantom's pass, s (``n_frames`` = sweep_s x frame_rate_hz).
        lateral_offsets_mm: the serpentine's lateral offsets, mm; None = as shipped.
        frame_rate_hz: B-mode frame rate, Hz.
        outage_at_s: the link goes down this long after the sweep starts, s.
        outage_s: how long the link stays down, s.
        timeout_s: give up (``completed`` false) after this long, s.
        subnet: third octet of the namespaces' 10.233.x.0/24.
    """

    sweep_s: float = 20.0
    lateral_offsets_mm: tuple[float, ...] | None = None
    frame_rate_hz: float = 30.0
    outage_at_s: float = 8.0
    outage_s: float = 3.0
    timeout_s: float = 240.0
    subnet: int = 233

    def validate(self) -> None:
        """Raises ValueError naming the first bad value."""
        if self.sweep_s * self.frame_rate_hz < 2:
            raise ValueError(f"sweep_s x frame_rate_hz: expected >= 2 frames, got {self.sweep_s}")
        if self.outage_s <= 0 or self.outage_at_s < 0:
            raise ValueError(
                f"expected outage_s > 0 and outage_at_s >= 0, got {self.outage_s}, "
                f"{self.outage_at_s}"
            )
        if self.outage_at_s + self.outage_s >= self.sweep_s:
            raise ValueError(
                f"the outage ({self.outage_at_s:g} s + {self.outage_s:g} s) must end before "
                f"the sweep does ({self.sweep_s:g} s)"
            )


def add_arguments(parser) -> None:
    d = MultihostConfig()
    parser.add_argument("--sweep-s", type=float, default=d.sweep_s, help="pass length, s")
    parser.add_argument(
        "--offsets-mm",
        type=float,
        nargs="+",
        default=None,
        help="lateral offsets of the serpentine, mm (default: as shipped)",
    )
    parser.add_argument("--outage-at-s", type=float, default=d.outage_at_s, help="after start, s")
    parser.add_argument("--outage-s", type=float, default=d.outage_s, help="link down for, s")
    parser.add_argument("--timeout", type=float, default=d.timeout_s, help="give up after, s")
    parser.add_argument("--subnet", type=int, default=d.subnet, help="10.233.SUBNET.0/24")


def run(args) -> dict:
    from usx_ros.tools import netns

    reason = netns.unavailable()
    if reason is not None:
        print(f"usx bench multihost: skipped: {reason}", file=sys.stderr)
        return {"skipped": reason}
    cfg = MultihostConfig(
        sweep_s=args.sweep_s,
        lateral_offsets_mm=tuple(args.offsets_mm) if args.offsets_mm else None,
        outage_at_s=args.outage_at_s,
        outage_s=args.outage_s,
        timeout_s=args.timeout,
        subnet=args.subnet,
    )
    return run_multihost(cfg)


def _params_overlay(cfg: MultihostConfig, bag: Path, path: Path) -> Path:
    """config/phantom.yaml with the run's sweep and the recorder's section."""
    import yaml

    from usx_ros.graph import config_path

    params = yaml.safe_load(config_path("phantom").read_text())
    phantom = params["phantom"]["ros__parameters"]
    phantom.update(
        frame_rate_hz=cfg.frame_rate_hz,
        n_frames=round(cfg.sweep_s * cfg.frame_rate_hz),
        # the workstation side is up (completion and a reader of its result) before the
        # first frame, so frames lost at the start are not mistaken for the link's
        wait_for_links=[*phantom.get("wait_for_links", []), "/usx/completed_spine"],
        service_wait_s=120.0,  # seven interpreters and torch starting on a small machine
    )
    if cfg.lateral_offsets_mm is not None:
        phantom["lateral_offsets_mm"] = list(cfg.lateral_offsets_mm)
    params["bag_record"] = {"ros__parameters": {"output": str(bag), "topics": RECORDED}}
    path.write_text(yaml.safe_dump(params))
    return path


@dataclass
class _Events:
    """The monitor's events as they arrive (filled by a reader thread)."""

    frames_t: list[float] = field(default_factory=list)
    frames_stamp: list[int] = field(default_factory=list)
    last: dict[str, dict] = field(default_factory=dict)
    sweep_start_t: float | None = None
    sweep_end_t: float | None = None
    spine_t: float | None = None  # first spine completion after the sweep's end

    def add(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "frame":
            self.frames_t.append(ev["t"])
            self.frames_stamp.append(ev["stamp_ns"])
            return
        self.last[kind] = ev
        if kind == "sweep_active":
            if ev["value"] and self.sweep_start_t is None:
                self.sweep_start_t = ev["t"]
            elif not ev["value"] and self.sweep_start_t is not None:
                self.sweep_end_t = ev["t"]
        elif kind == "spine_completion" and self.sweep_end_t is not None and self.spine_t is None:
            self.spine_t = ev["t"]


def _read_events(stream, events: _Events) -> None:
    for line in stream:
        try:
            events.add(json.loads(line))
        except (json.JSONDecodeError, KeyError):
            continue  # a stray log line on stdout


class _Processes:
    """The run's processes, each in its own process group, logs in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    def start(self, name: str, cmd: list[str], env: dict, stdout=None) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # closed by stop()
        self._logs.append(log)
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=stdout or log,
            stderr=log,
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal reaches the bench only
        )
        self.procs[name] = proc
        return proc

    def failed(self) -> str | None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text().strip().splitlines()[-5:]
                return f"{name} exited with code {proc.returncode}: " + " | ".join(tail)
        return None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGINT every process group (clean ROS shutdown), SIGKILL what outlives it."""
        for proc in self.procs.values():
            if proc.poll() is None:
                _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        for log in self._logs:
            log.close()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _child_env(peer_ip: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["ROS_STATIC_PEERS"] = peer_ip
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"  # multicast: this namespace only
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start_graph(pair, procs: _Processes, params: Path) -> subprocess.Popen:
    """Start the workstation side, then the robot side; returns the monitor."""
    from usx_ros.graph import graph

    nodes = {d.name: d for d in graph("phantom")}
    ws_env, robot_env = _child_env(pair.a_ip), _child_env(pair.b_ip)
    ws, robot = pair.exec_prefix(pair.b), pair.exec_prefix(pair.a)
    py = [sys.executable, "-m"]
    monitor = procs.start(
        "monitor", [*ws, *py, "usx_ros.tools.multihost_monitor"], ws_env, subprocess.PIPE
    )
    recorder = ["usx_ros.tools.bag_record", "--ros-args", "--params-file", str(params)]
    procs.start("bag_record", [*ws, *py, *recorder], ws_env)
    for name in WORKSTATION_NODES:
        d = nodes[name]
        procs.start(name, [*ws, *py, d.module, *d.ros_args(params)], ws_env)
    for name in ROBOT_NODES:
        d = nodes[name]
        procs.start(name, [*robot, *py, d.module, *d.ros_args(params)], robot_env)
    return monitor


def _count_bag(bag: Path, topic: str) -> int | None:
    from usx_ros.tools.bag import read_bag

    if not (bag / "metadata.yaml").is_file():
        return None
    return sum(1 for _ in read_bag(bag, topics=[topic]))


def run_multihost(cfg: MultihostConfig) -> dict:
    """Run the bench once; returns its figures (module docstring).

    Raises:
        ValueError: a bad configuration, or a node that exited during the run.
        OSError: the namespaces could not be built.
    """
    from usx_ros.tools.netns import NamespacePair

    cfg.validate()
    tag = str(os.getpid() % 100000)
    events = _Events()
    outage_down = outage_up = None
    with (
        tempfile.TemporaryDirectory(prefix="usx_bench_multihost_") as tmp,
        sigterm_as_interrupt(),
    ):
        tmp_dir = Path(tmp)
        bag = tmp_dir / "bag"
        params = _params_overlay(cfg, bag, tmp_dir / "params.yaml")
        procs = _Processes(tmp_dir)
        pair = NamespacePair.create(tag, cfg.subnet)
        t0 = time.monotonic()
        try:
            monitor = _start_graph(pair, procs, params)
            reader = threading.Thread(
                target=_read_events, args=(monitor.stdout, events), daemon=True
            )
            reader.start()
            deadline = t0 + cfg.timeout_s
            while events.spine_t is None and time.monotonic() < deadline:
                failure = procs.failed()
                if failure is not None:
                    raise ValueError(failure)
                now = time.monotonic()
                start = events.sweep_start_t
                if outage_down is None and start is not None and now >= start + cfg.outage_at_s:
                    pair.set_link(up=False)
                    outage_down = time.monotonic()
                elif outage_up is None and outage_down is not None:
                    if now >= outage_down + cfg.outage_s:  # the wait *is* the outage
                        pair.set_link(up=True)
                        outage_up = time.monotonic()
                time.sleep(0.02)
            link_rx_bytes = pair.rx_bytes(pair.b)
        finally:
            procs.stop()
            pair.close()
        wall_s = time.monotonic() - t0
        frames_recorded = _count_bag(bag, "/us/image")
        spine_recorded = _count_bag(bag, "/usx/completed_spine")
    return _result(
        cfg, events, outage_down, outage_up, link_rx_bytes, frames_recorded, spine_recorded, wall_s
    )


def _result(
    cfg, events: _Events, down, up, rx_bytes, frames_recorded, spine_recorded, wall_s
) -> dict:
    status = events.last.get("phantom_status", {}).get("status", {})
    sent = status.get("frames_sent")
    outage = Outage(down, up) if down is not None and up is not None else None
    frames = frame_accounting(events.frames_t, events.frames_stamp, sent, outage)
    start, end = events.sweep_start_t, events.sweep_end_t
    report = events.last.get("sweep_report", {})
    return {
        "completed": events.spine_t is not None,
        "outage_s": outage.duration_s if outage else None,
        "outage_inside_sweep": bool(
            outage and start is not None and end is not None and start < down and up < end
        ),
        "frames_sent": sent,
        **frames,
        "frames_recorded": frames_recorded,
        "completed_spine_recorded": bool(spine_recorded),
        "link_rx_bytes": rx_bytes,
        "sweep_s": end - start if start is not None and end is not None else None,
        "sweep_end_to_spine_s": events.spine_t - end if events.spine_t is not None else None,
        "sweep_report": {k: v for k, v in report.items() if k.startswith("frames_")},
        "status": events.last.get("spine_completion", {}).get("status", {}),
        "config": {
            "sweep_s": cfg.sweep_s,
            "lateral_offsets_mm": cfg.lateral_offsets_mm,
            "frame_rate_hz": cfg.frame_rate_hz,
            "outage_at_s": cfg.outage_at_s,
            "outage_s": cfg.outage_s,
        },
        "wall_s": wall_s,
    }
