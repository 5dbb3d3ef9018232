"""``usx bench soak``: the phantom graph sweeping back to back for minutes.

The product launcher (``usx launch phantom --isolated``: one process per node, restarts
on exit) runs the phantom with ``loop`` on at ``--rate-hz`` B-mode frames; a watcher in
this process pairs each pass with its ``SweepReport`` and completed spine
(``tools.graph_watch``) and samples every node process's resident memory, threads and
open files every ``--sample-s``. After ``--minutes`` the sweep in progress is let finish.

JSON (frames and latencies over every sweep, the first one included):

- ``frames_sent``: B-mode frames the phantom published (its own counter);
- ``frames_placed``, ``frames_no_contact`` (refused by the contact test: the probe imaged
  air, which is a correct answer, not a loss) from the sweep reports;
- ``frames_dropped``: sent and neither placed nor refused for no contact - lost in
  transport, refused at the input or dropped by the sweep for another reason;
- ``latency_first_s`` / ``latency_last_s``: sweep end (the phantom's stop edge) to the
  completed spine's arrival here, of the first and the last sweep; ``latency_s`` all;
- ``rss_growth_pct``: the largest, over the node processes, of the growth of their peak
  resident memory from the first sweep after the warm-up sweep to the last sweep, in per
  cent (each sweep's window runs from its start to its spine's arrival). Peaks, because
  a node's memory follows a sawtooth within each sweep (us_compounding allocates a sweep's
  volume when it starts and frees it when it closes): a single sample at the end against
  one after the warm-up compares two arbitrary points of that sawtooth. That comparison is
  reported too, ``rss_growth_pct_point_by_node``;
- ``processes``: per node, ``[t_s, rss_mb, threads, open_files]`` over time, and its
  restarts (a new pid) - a soak is only a soak if nothing restarted.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

NAME = "soak"
HELP = "phantom graph sweeping back to back: drops, memory growth, latency drift"


def add_arguments(parser) -> None:
    parser.add_argument("--rate-hz", type=float, default=60.0, help="B-mode frame rate")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to sweep")
    parser.add_argument("--sample-s", type=float, default=2.0, help="process sampling period")
    parser.add_argument(
        "--sweep-speed-mm-s", type=float, default=None, help="default: the phantom's"
    )
    parser.add_argument(
        "--finish-s", type=float, default=180.0, help="wait this long for the last sweep"
    )


def _sample(proc) -> tuple[float, int, int]:
    """(RSS MB, threads, open files) of one process."""
    with proc.oneshot():
        return proc.memory_info().rss / 2**20, proc.num_threads(), proc.num_fds()


class _Sampler:
    """Samples the graph's node processes every ``period_s`` in a thread."""

    def __init__(self, graph, period_s: float, t0: float) -> None:
        self.graph, self.period_s, self.t0 = graph, period_s, t0
        self.series: dict[str, list[list[float]]] = {}
        self.pids: dict[str, list[int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample_now(self) -> dict[str, float]:
        """Take one sample of every node; ``{node: rss_mb}``."""
        import psutil

        out = {}
        t = round(time.monotonic() - self.t0, 1)
        for node, proc in self.graph.processes().items():
            try:
                rss, threads, fds = _sample(proc)
            except psutil.NoSuchProcess:
                continue
            pids = self.pids.setdefault(node, [])
            if not pids or pids[-1] != proc.pid:
                pids.append(proc.pid)
            self.series.setdefault(node, []).append([t, round(rss, 1), threads, fds])
            out[node] = rss
        return out

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sample_now()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def run(args) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from usx_ros.dds import configure_dds
    from usx_ros.tools.graph_watch import LaunchedGraph, SweepWatch, overlay_config
    from usx_ros.tools.launcher import spin_in_background

    if not (1.0 <= args.rate_hz <= 120.0):
        raise ValueError(f"--rate-hz: expected 1..120 (the phantom's range), got {args.rate_hz}")
    if args.minutes <= 0 or args.sample_s <= 0:
        raise ValueError(
            f"--minutes and --sample-s: expected > 0, got {args.minutes}, {args.sample_s}"
        )
    phantom = {"frame_rate_hz": args.rate_hz, "loop": True}
    if args.sweep_speed_mm_s is not None:
        phantom["sweep_speed_mm_s"] = args.sweep_speed_mm_s
    configure_dds()
    context = rclpy.context.Context()
    rclpy.init(context=context)
    watch = SweepWatch(rclpy.create_node("usx_soak_watch", context=context))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(watch.node)
    spinner = spin_in_background(executor)
    with tempfile.TemporaryDirectory(prefix="usx_bench_soak_") as tmp:
        # port 0: another graph on this machine may hold OpenIGTLink's 18944
        config = overlay_config(
            {"phantom": phantom, "igtl_bridge": {"port": 0}}, Path(tmp) / "soak.yaml"
        )
        t0 = time.monotonic()
        graph = LaunchedGraph(config)
        sampler = _Sampler(graph, args.sample_s, t0)
        try:
            baseline = _run_sweeps(graph, watch, sampler, args, t0)
            end = sampler.sample_now()
        finally:
            sampler.close()
            graph.stop()
            executor.shutdown()
            spinner.join(timeout=5.0)
            watch.node.destroy_node()
            context.try_shutdown()
    return _summary(watch, sampler, baseline, end, graph.lines, args, time.monotonic() - t0)


def _run_sweeps(graph, watch, sampler, args, t0: float) -> dict[str, float]:
    """Sweep for ``--minutes`` and let the last sweep finish; the warm-up RSS baseline.

    Raises:
        ValueError: the launcher stopped, or no completed spine at all.
    """
    baseline: dict[str, float] = {}
    stop_at = t0 + args.minutes * 60.0
    while time.monotonic() < stop_at:
        if not graph.alive():
            raise ValueError("the launcher stopped: " + " | ".join(graph.lines[-5:]))
        if not baseline and watch.completed():
            baseline = sampler.sample_now()  # after the warm-up sweep's spine
        time.sleep(0.2)
    n_started = len(watch.sweeps)
    deadline = time.monotonic() + args.finish_s
    while time.monotonic() < deadline and graph.alive():
        last = watch.sweeps[n_started - 1] if n_started else None
        if last is not None and last.completion is not None:
            break
        time.sleep(0.2)
    if not watch.completed():
        raise ValueError(
            f"no completed spine in {args.minutes:g} min; launcher: " + " | ".join(graph.lines[-5:])
        )
    return baseline


def _summary(watch, sampler, baseline, end, lines, args, wall_s: float) -> dict:
    sweeps = watch.completed()
    reports = [s.report for s in sweeps if s.report is not None]
    n = len(sweeps)
    # the phantom's counter at the end of the last completed sweep (pass index n - 1)
    status = watch.status_by_pass.get(watch.sweeps.index(sweeps[-1]), watch.phantom_status)
    sent = int(status.get("frames_sent", 0))
    placed = sum(int(r.frames_placed) for r in reports)
    no_contact = sum(int(r.frames_no_contact) for r in reports)
    latencies = [s.latency_s for s in sweeps]
    point = {
        node: 100.0 * (end[node] - baseline[node]) / baseline[node]
        for node in baseline
        if node in end and baseline[node] > 0
    }
    growth = _peak_growth(sampler, sweeps) if n >= 3 else {}
    restarts = {node: len(p) - 1 for node, p in sampler.pids.items()}
    return {
        "rate_hz": args.rate_hz,
        "minutes": args.minutes,
        "wall_s": round(wall_s, 1),
        "sweeps_completed": n,
        "reports_missing": n - len(reports),
        "frames_sent": sent,
        "frames_placed": placed,
        "frames_no_contact": no_contact,
        "frames_dropped": sent - placed - no_contact,
        "drop_fraction": (sent - placed - no_contact) / sent if sent else None,
        "latency_first_s": latencies[0],
        "latency_last_s": latencies[-1],
        "latency_s": [round(v, 3) for v in latencies],
        "levels_ok_last": sum(v.status == 0 for v in sweeps[-1].completion.vertebrae),
        "rss_growth_pct": max(growth.values()) if growth else None,
        "rss_growth_pct_by_node": {k: round(v, 2) for k, v in growth.items()},
        "rss_growth_pct_point_by_node": {k: round(v, 2) for k, v in point.items()},
        "restarts": restarts,
        "launcher_lines": lines[-20:],
        "processes": sampler.series,
    }


def _peak_growth(sampler, sweeps) -> dict[str, float]:
    """Per node: growth (%) of the peak RSS from the second completed sweep to the last.

    The first sweep warms up (imports, the network's first pass, allocator pools).
    """

    def peak(node: str, sweep) -> float | None:
        lo, hi = sweep.start - sampler.t0, sweep.completion_t - sampler.t0
        values = [r[1] for r in sampler.series.get(node, []) if lo - 0.1 <= r[0] <= hi + 0.1]
        return max(values) if values else None

    out = {}
    for node in sampler.series:
        first, last = peak(node, sweeps[1]), peak(node, sweeps[-1])
        if first and last is not None:
            out[node] = 100.0 * (last - first) / first
    return out
