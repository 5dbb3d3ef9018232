"""Run the phantom graph as ``usx launch phantom --isolated`` does and watch it from outside.

What the long-running benches (``usx bench soak``, ``usx bench faults``) share:

- :func:`overlay_config`: ``config/phantom.yaml`` with some parameters changed, as a new
  file (the nodes read one parameter file);
- :class:`LaunchedGraph`: the product launcher in a child process (one process per node,
  respawn on exit), its stderr lines, and each node's process, found by its module;
- :class:`SweepWatch`: a node that timestamps (monotonic s) every sweep start and end of
  the phantom, every ``SweepReport`` and every ``SpineCompletion``, so that each sweep
  can be paired with its completed spine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rclpy.node import Node
from std_msgs.msg import Bool, String

from usx_msgs.msg import SpineCompletion, SweepReport
from usx_ros.graph import config_path, graph
from usx_ros.qos import RESULT_QOS


def overlay_config(overrides: dict[str, dict], out: Path, name: str = "phantom") -> Path:
    """Write graph ``name``'s parameter file with ``{node: {param: value}}`` replaced.

    Raises:
        ValueError: a node that the file has no section for.
    """
    params = yaml.safe_load(config_path(name).read_text())
    for node, values in overrides.items():
        if node not in params:
            raise ValueError(f"no section {node!r} in {name}.yaml; known: {sorted(params)}")
        params[node]["ros__parameters"].update(values)
    out.write_text(yaml.safe_dump(params))
    return out


class LaunchedGraph:
    """``usx launch GRAPH --isolated --config CONFIG`` in a child process (context manager).

    ``record``: also ``--record RECORD`` (``bag_record`` is then one more node, a new bag
    in that folder at every start).

    Attributes:
        lines: the launcher's stderr lines so far (exits and restarts are reported there).
    """

    def __init__(
        self,
        config: Path,
        name: str = "phantom",
        env: dict | None = None,
        record: Path | None = None,
    ) -> None:
        import psutil

        usx = Path(sys.executable).parent / "usx"
        self.modules = {d.name: d.module for d in graph(name)}
        if record is not None:
            self.modules["bag_record"] = "usx_ros.tools.bag_record"
        extra = [] if record is None else ["--record", str(record)]
        self.proc = subprocess.Popen(
            [str(usx), "launch", name, "--isolated", "--config", str(config), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env if env is not None else os.environ.copy(),
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.launcher = psutil.Process(self.proc.pid)

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def node_process(self, node: str):
        """The ``psutil.Process`` running ``node`` now, or None (not started, restarting)."""
        import psutil

        module = self.modules[node]
        for child in self.launcher.children():
            try:
                if module in child.cmdline():
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def processes(self) -> dict:
        """``{node: psutil.Process}`` of the nodes running now."""
        return {n: p for n in self.modules if (p := self.node_process(n)) is not None}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGINT the launcher (it stops its nodes cleanly); kill the group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                # its threads' stacks into its output (lines): where it hung
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(1.0)
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout_s)
        self._reader.join(timeout=5.0)
        return self.proc.returncode

    def __enter__(self) -> LaunchedGraph:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@dataclass
class Sweep:
    """One phantom pass as the watcher saw it (monotonic s; None until it happens)."""

    start: float
    end: float | None = None
    report: SweepReport | None = None
    completion: SpineCompletion | None = None
    completion_t: float | None = None

    @property
    def latency_s(self) -> float | None:
        """Sweep end (the phantom's stop edge) to the completed spine's arrival."""
        if self.end is None or self.completion_t is None:
            return None
        return self.completion_t - self.end


@dataclass
class SweepWatch:
    """Pairs the phantom's sweeps with their reports and completions (see module doc).

    A completion belongs to the last sweep that ended before it arrived and has none yet;
    the phantom's cumulative counters come from its ``/phantom/status``, which it sends
    at the end of each pass.
    """

    node: Node
    sweeps: list[Sweep] = field(default_factory=list)
    phantom_status: dict = field(default_factory=dict)
    #: the phantom's status at the end of each pass, by pass index (0 = first pass)
    status_by_pass: dict[int, dict] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        n = self.node
        n.create_subscription(Bool, "/usx/phantom/sweep_active", self._on_active, RESULT_QOS)
        n.create_subscription(SweepReport, "/usx/sweep_report", self._on_report, RESULT_QOS)
        n.create_subscription(
            SpineCompletion, "/usx/spine_completion", self._on_completion, RESULT_QOS
        )
        n.create_subscription(String, "/phantom/status", self._on_status, RESULT_QOS)

    def _on_active(self, msg: Bool) -> None:
        now = time.monotonic()
        with self._lock:
            last = self.sweeps[-1] if self.sweeps else None
            if msg.data and (last is None or last.end is not None):
                self.sweeps.append(Sweep(start=now))
            elif not msg.data and last is not None and last.end is None:
                last.end = now

    def _on_report(self, msg: SweepReport) -> None:
        with self._lock:
            for s in reversed(self.sweeps):
                if s.end is not None and s.report is None:
                    s.report = msg
                    return

    def _on_completion(self, msg: SpineCompletion) -> None:
        if not msg.final:  # a live completion while the sweep records
            return
        now = time.monotonic()
        with self._lock:
            waiting = [s for s in self.sweeps if s.end is not None and s.completion is None]
            if waiting:
                waiting[-1].completion, waiting[-1].completion_t = msg, now

    def _on_status(self, msg: String) -> None:
        import json

        try:
            status = json.loads(msg.data)
        except ValueError:
            return
        with self._lock:
            self.phantom_status = status
            # sent as a pass ends, before its counter moves on: the index of that pass
            if "passes_completed" in status:
                self.status_by_pass[int(status["passes_completed"])] = status

    def completed(self) -> list[Sweep]:
        """Sweeps that ended and have their completed spine."""
        with self._lock:
            return [s for s in self.sweeps if s.completion is not None]
