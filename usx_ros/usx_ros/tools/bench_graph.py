"""``usx bench graph``: the phantom graph streaming at 30 Hz — drops, latency, memory.

Runs the live demo (one process per node, as ``ros2 launch`` would) while sampling the
resident memory of the graph's processes every ``--sample-s``; reports the frames the
phantom sent, how many the compounding node placed and dropped (and why), the latency
from sweep end to the completed spine, and memory over time.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time

NAME = "graph"
HELP = "phantom graph at 30 Hz: frame drops, sweep-end-to-completion latency, memory"


def add_arguments(parser) -> None:
    parser.add_argument("--sample-s", type=float, default=1.0, help="memory sampling period")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this (s)")
    parser.add_argument("--weights-full", default=None, help="default: shipped")
    parser.add_argument("--weights-us-only", default=None, help="default: shipped")


def _graph_rss_mb() -> float:
    import psutil

    procs = psutil.Process(os.getpid()).children(recursive=True)
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run(args) -> dict:
    from usx_ros.tools.demo import run_demo

    samples: list[tuple[float, float]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic() - t0, _graph_rss_mb()))
            stop.wait(args.sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    weights = {
        k: v for k, v in (("full", args.weights_full), ("us_only", args.weights_us_only)) if v
    }
    with tempfile.TemporaryDirectory(prefix="usx_bench_graph_") as out:
        try:
            report = run_demo(out, timeout_s=args.timeout, weights=weights)
        finally:
            stop.set()
            sampler.join()
    g = report["graph"]
    sent = int(g.get("frames_sent", 0))
    placed = int(g.get("frames_placed", 0))
    # Frames the compounding node never saw (lost in transport) count as dropped too.
    dropped = sent - placed if sent else int(g.get("frames_dropped", 0))
    live = [rss for _, rss in samples if rss > 0]
    return {
        "frames_sent": sent,
        "frames_placed": placed,
        "frames_dropped": dropped,
        "drop_fraction": dropped / sent if sent else None,
        "drops_by_reason": g.get("drops_by_reason", {}),
        "latency_s": {k: v for k, v in report["latency_s"].items() if not isinstance(v, dict)},
        "completion_stages_s": report["latency_s"].get("completion_stages", {}),
        "rss_mb_start": live[0] if live else None,
        "rss_mb_end": live[-1] if live else None,
        "rss_mb_max": max(live) if live else None,
        "rss_mb_over_time": [[round(t, 1), round(m, 1)] for t, m in samples],
        "mean_cd_l1_mm": report.get("mean_cd_l1_mm"),
    }
