"""Crash and restart: ``kill -9`` nodes of the recording phantom graph mid-sweep.

The phantom graph runs as ``usx launch phantom --isolated --record DIR`` (one process per
node, ``bag_record`` among them, each restarted by the launcher's respawn policy) with the
phantom sweeping in a loop. For each node in turn, in the middle of a sweep, the node's
process gets SIGKILL; the launcher restarts it; the run measures from outside (a
:class:`~usx_ros.tools.graph_watch.SweepWatch`, ``/diagnostics``, the launcher's stderr):

- ``recovered`` / ``recover_s``: the node's ``/diagnostics`` status was seen again, and
  how long after the new process started (s; includes the node's start-up, its imports,
  and up to one diagnostics period, 1 s);
- ``next_sweep_completed``: a sweep that started after the recovery ended with a
  ``SpineCompletion``;
- ``bag_readable``: the bags recorded across the kill (the one being written at the kill;
  for ``bag_record`` also the restarted recorder's new one) read with ``read_bag`` to the
  end, after ``usx bag reindex`` (``reindex_bag``) for a bag left without ``metadata.yaml``;
- ``messages_lost_before_kill``: the recorder's ``messages_written`` in its last
  ``/diagnostics`` before the kill (the kill follows that report within milliseconds)
  minus the messages readable from that recorder's bag after the run, at least 0. For
  ``bag_record`` it is what the kill cost the bag (bounded by its ``flush_period_s``); for
  the other nodes the recorder stayed up and it must be 0 (the bag holds every message
  written before the kill). The recorder's report and its flush share the 1 s period, so
  a kill right after a report also falls right after a flush: the loss measured there is
  the usual case, not the worst; ``recorder_at_kill.unflushed_max`` (messages) and
  ``unflushed_max_s`` are the worst the recorder met so far — the most messages, and the
  longest time, held in memory only, i.e. what a kill at the worst moment would lose.

Extras per node: the launcher's restart line, the killed and new pids, the cut sweep
(its index, how far into it the kill fell, whether it still completed), the next sweep
(how long after the recovery it started, its sweep-end-to-completion latency).

Bags are ``DIR/NNN_YYYYMMDDTHHMMSSZ`` (``tools.bag_record``).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray

from usx_ros.qos import DIAGNOSTICS_QOS
from usx_ros.tools.bag_record import RecordParams
from usx_ros.tools.faults_config import FaultsConfig
from usx_ros.tools.graph_watch import LaunchedGraph, Sweep, SweepWatch, overlay_config


class DiagnosticsWatch:
    """Every node's ``/diagnostics`` reports: wall time (s) and values, per node name."""

    def __init__(self, node) -> None:
        self.reports: dict[str, list[tuple[float, dict[str, str]]]] = {}
        self._lock = threading.Lock()
        self._event = threading.Condition(self._lock)
        node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diagnostics, DIAGNOSTICS_QOS
        )

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = time.time()
        with self._event:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                self.reports.setdefault(status.name, []).append((now, values))
            self._event.notify_all()

    def first_after(self, name: str, t_wall: float) -> tuple[float, dict] | None:
        with self._lock:
            return next((r for r in self.reports.get(name, ()) if r[0] > t_wall), None)

    def wait_next(self, name: str, timeout_s: float) -> tuple[float, dict] | None:
        """The next report of ``name`` that arrives within ``timeout_s``."""
        t0 = time.time()
        deadline = time.monotonic() + timeout_s
        with self._event:
            while True:
                fresh = [r for r in self.reports.get(name, ()) if r[0] > t0]
                if fresh:
                    return fresh[0]
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._event.wait(left)


def _wait(cond, timeout_s: float, period_s: float = 0.1):
    """``cond()``'s first truthy value within ``timeout_s``, else None (polls an outside
    process: no event to wait on)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := cond():
            return value
        time.sleep(period_s)
    return None


def _mono_of_wall(t_wall: float) -> float:
    return time.monotonic() - (time.time() - t_wall)


class _Run:
    """One faults run on a launched graph (see the module doc)."""

    def __init__(self, cfg: FaultsConfig, graph: LaunchedGraph, watch: SweepWatch, diag) -> None:
        self.cfg, self.graph, self.watch, self.diag = cfg, graph, watch, diag
        self.sweep_s: float | None = None

    def first_sweep(self) -> Sweep | None:
        done = _wait(lambda: self.watch.completed(), self.cfg.startup_timeout_s, 0.5)
        if done:
            self.sweep_s = done[0].end - done[0].start
        return done[0] if done else None

    def _kill_point(self, after_mono: float, timeout_s: float) -> Sweep | None:
        """Wait for the kill point of the first running sweep that started after
        ``after_mono`` (a sweep that ended before its kill point is passed over)."""
        offset = self.cfg.kill_after_s or self.cfg.kill_at * (self.sweep_s or 0.0)

        def due() -> Sweep | None:
            live = [s for s in self.watch.sweeps if s.start > after_mono and s.end is None]
            if live and time.monotonic() >= live[0].start + offset:
                return live[0]
            return None

        return _wait(due, timeout_s, 0.05)

    def kill(self, node: str, after_mono: float) -> dict:
        cfg, g = self.cfg, self.graph
        out: dict = {
            "recovered": False,
            "recover_s": None,
            "next_sweep_completed": False,
            "bag_readable": None,
            "messages_lost_before_kill": None,
        }
        deadline = time.monotonic() + cfg.step_timeout_s
        while True:
            sweep = self._kill_point(after_mono, max(0.0, deadline - time.monotonic()))
            if sweep is None:
                out["error"] = "no sweep started"
                return out
            # Kill right after the recorder's report, so that its count is the count at
            # the kill; a sweep that ended while waiting for it is passed over.
            report = self.diag.wait_next("bag_record", 5.0)
            if sweep.end is None:
                break
            after_mono = sweep.start
        proc = g.node_process(node)
        if proc is None:
            out["error"] = f"no process of {node}"
            return out
        t_kill = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        cut = self.watch.sweeps.index(sweep)
        out["killed_pid"] = proc.pid
        out["cut_sweep"] = {
            "index": cut,
            "killed_s_into_sweep": round(t_kill - sweep.start, 2),
            "ended_before_kill": sweep.end is not None and sweep.end < t_kill,
        }
        if report is not None:
            values = report[1]
            out["recorder_at_kill"] = {
                "bag": values.get("bag"),
                "messages_written": int(values.get("messages_written", 0)),
                "messages_flushed": int(values.get("messages_flushed", 0)),
                # the recorder's worst moment so far: what a kill then would have lost
                "unflushed_max": int(values.get("unflushed_max", 0)),
                "unflushed_max_s": float(values.get("unflushed_max_s", 0.0)),
                "report_age_s": round(time.time() - report[0], 3),
            }
        new = _wait(
            lambda: (p := g.node_process(node)) is not None and p.pid != proc.pid and p,
            cfg.step_timeout_s,
        )
        line = next((s for s in g.lines if f"node {node} exited with code -9" in s), None)
        out["launcher_line"] = line
        if not new:
            out["error"] = "not restarted"
            return out
        out["new_pid"] = new.pid
        started_wall = new.create_time()
        back = _wait(lambda: self.diag.first_after(node, started_wall), cfg.step_timeout_s)
        if back is None:
            out["error"] = "no /diagnostics from the restarted node"
            return out
        out["recovered"] = True
        out["recover_s"] = round(back[0] - started_wall, 2)
        if node == "bag_record":
            out["new_bag"] = back[1].get("bag")
        t_back = _mono_of_wall(back[0])
        nxt = _wait(
            lambda: next((s for s in self.watch.completed() if s.start > t_back), None),
            cfg.step_timeout_s,
            0.2,
        )
        out["next_sweep_completed"] = nxt is not None
        if nxt is not None:
            out["next_sweep"] = {
                "index": self.watch.sweeps.index(nxt),
                "started_s_after_recovery": round(nxt.start - t_back, 2),
                "latency_s": None if nxt.latency_s is None else round(nxt.latency_s, 2),
            }
            out["_done_mono"] = nxt.completion_t
        return out


def _bag_counts(bag_dir: Path) -> dict[str, dict]:
    """Every bag in ``bag_dir``: reindexed when it has no metadata.yaml, then read to the end."""
    from usx_ros.tools.bag import read_bag
    from usx_ros.tools.bag_reindex import reindex_bag

    bags = {}
    for bag in sorted(p for p in bag_dir.iterdir() if p.is_dir()):
        entry: dict = {"reindexed": False}
        try:
            if not (bag / "metadata.yaml").is_file():
                rep = reindex_bag(bag)
                entry.update(reindexed=True, bytes_dropped=rep.bytes_dropped, reason=rep.reason)
            entry["messages"] = sum(1 for _ in read_bag(bag))
            entry["readable"] = True
        except ValueError as exc:
            entry.update(readable=False, error=str(exc))
        bags[str(bag.resolve())] = entry
    return bags


def run_faults(cfg: FaultsConfig, out_dir: Path, context) -> dict:
    """Launch the recording phantom graph in ``out_dir`` and kill ``cfg.nodes`` in turn.

    Args:
        cfg: the run.
        out_dir: gets ``phantom.yaml`` (the overlay) and ``bags/``.
        context: an initialised rclpy context for the watching node.

    Returns:
        ``{"nodes": {name: {...}}, "bags": {...}, ...}`` (see the module doc).
    """
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from usx_ros.tools.launcher import spin_in_background

    out_dir = out_dir.resolve()  # the recorder's bag paths are absolute
    out_dir.mkdir(parents=True, exist_ok=True)
    config = overlay_config(cfg.overrides(), out_dir / "phantom.yaml")
    bag_dir = out_dir / "bags"
    node = rclpy.create_node(f"usx_faults_{os.getpid()}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spin_in_background(executor)
    t0 = time.monotonic()
    results: dict[str, dict] = {}
    try:
        watch, diag = SweepWatch(node), DiagnosticsWatch(node)
        with LaunchedGraph(config, record=bag_dir) as graph:
            run = _Run(cfg, graph, watch, diag)
            if cfg.kill_after_s is None and run.first_sweep() is None:
                raise RuntimeError(
                    f"no completed sweep within {cfg.startup_timeout_s:g} s of the launch; "
                    f"launcher said: {graph.lines[-5:]}"
                )
            after = watch.sweeps[-1].start if cfg.kill_after_s is None else t0
            for name in cfg.nodes:
                if not graph.alive():
                    results[name] = {"recovered": False, "error": "the launcher stopped"}
                    continue
                results[name] = run.kill(name, after)
                after = results[name].pop("_done_mono", None) or time.monotonic()
            cut_done = {i for i, s in enumerate(watch.sweeps) if s.completion is not None}
            launcher_lines = list(graph.lines)
    finally:
        executor.shutdown()
        node.destroy_node()
    bags = _bag_counts(bag_dir) if bag_dir.is_dir() else {}
    for name, r in results.items():
        _score(name, r, bags, cut_done)
    return {
        "nodes": results,
        "bags": bags,
        "all_bags_readable": bool(bags) and all(b["readable"] for b in bags.values()),
        "sweeps_seen": len(watch.sweeps),
        "sweeps_completed": len(cut_done),
        "first_sweep_s": None if run.sweep_s is None else round(run.sweep_s, 2),
        "config": {
            "sweep_speed_mm_s": cfg.sweep_speed_mm_s,
            "loop_pause_s": cfg.loop_pause_s,
            "kill_at": None if cfg.kill_after_s else cfg.kill_at,
            "kill_after_s": cfg.kill_after_s,
            "recorder_flush_period_s": RecordParams().flush_period_s,
        },
        "launcher_restart_lines": [s for s in launcher_lines if "exited with code" in s],
        "elapsed_s": round(time.monotonic() - t0, 1),
    }


def _score(name: str, r: dict, bags: dict[str, dict], cut_done: set[int]) -> None:
    """Fill in ``bag_readable`` and ``messages_lost_before_kill`` from the bags after the run."""
    if "cut_sweep" in r:
        r["cut_sweep"]["completed"] = r["cut_sweep"]["index"] in cut_done
    at_kill = r.get("recorder_at_kill")
    if not at_kill or not at_kill.get("bag"):
        return
    involved = [at_kill["bag"], *([r["new_bag"]] if r.get("new_bag") else [])]
    entries = [bags.get(str(Path(b).resolve())) for b in involved]
    r["bag_readable"] = all(e is not None and e["readable"] for e in entries)
    first = entries[0]
    if first is not None and first["readable"]:
        r["bag_messages"] = first["messages"]
        r["messages_lost_before_kill"] = max(0, at_kill["messages_written"] - first["messages"])
