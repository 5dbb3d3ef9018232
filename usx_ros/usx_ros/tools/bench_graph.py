"""``usx bench graph``: the phantom graph streaming frames — drops, latency, memory.

Runs the live demo (one process per node, as ``ros2 launch`` would; one serpentine sweep,
frames at ``--rate-hz``; ``--sweeps N`` runs it N times, each a fresh graph, and reports the
medians over the sweeps beside each sweep's own figures) while sampling the resident memory of
the graph's processes every ``--sample-s``; reports the frames the phantom sent, how many the
compounding node placed and dropped (and why), ``sweep_end_to_spine_s`` (sweep end to the
completed spine), ``level_ready_s`` (for each level, from the moment the sweep's feedback first
called it covered to its first completion, live while the sweep records), each level's first
publication relative to the sweep's end, and memory over time.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path

NAME = "graph"
HELP = "phantom graph: frame drops, sweep-end-to-spine and per-level ready latency, memory"


def add_arguments(parser) -> None:
    parser.add_argument("--rate-hz", type=float, default=30.0, help="B-mode frame rate (1-120)")
    parser.add_argument(
        "--sweeps", type=int, default=1, help="sweeps, each in a fresh graph (medians reported)"
    )
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
    if not 1.0 <= args.rate_hz <= 120.0:
        raise ValueError(f"--rate-hz: expected 1..120 (the phantom's range), got {args.rate_hz}")
    if not 1 <= args.sweeps <= 20:
        raise ValueError(f"--sweeps: expected 1..20, got {args.sweeps}")
    runs = [_one_sweep(args) for _ in range(args.sweeps)]
    if len(runs) == 1:
        return runs[0]
    return {**_medians(runs), "sweeps": len(runs), "per_sweep": runs}


def _medians(runs: list[dict]) -> dict:
    """Median over the sweeps of each figure the issue names (and the frame counts)."""
    import numpy as np

    def med(values) -> float | None:
        v = [x for x in values if x is not None]
        return float(np.median(v)) if v else None

    levels = sorted({lv for r in runs for lv in r["level_ready_s"]})
    return {
        "rate_hz": runs[0]["rate_hz"],
        "sweep_end_to_spine_s": med(r["sweep_end_to_spine_s"] for r in runs),
        "level_ready_s": {lv: med(r["level_ready_s"].get(lv) for r in runs) for lv in levels},
        "frames_sent": sum(r["frames_sent"] for r in runs),
        "frames_placed": sum(r["frames_placed"] for r in runs),
        "frames_dropped": sum(r["frames_dropped"] for r in runs),
        "drop_fraction": med(r["drop_fraction"] for r in runs),
        "mean_cd_l1_mm": med(r["mean_cd_l1_mm"] for r in runs),
    }


def _one_sweep(args) -> dict:
    from usx_ros.tools.demo import run_demo
    from usx_ros.tools.graph_watch import overlay_config

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
            config = overlay_config(
                {"phantom": {"frame_rate_hz": float(args.rate_hz)}}, Path(out) / "phantom.yaml"
            )
            report = run_demo(out, params_file=config, timeout_s=args.timeout, weights=weights)
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
        "rate_hz": args.rate_hz,
        "sweep_end_to_spine_s": report["latency_s"]["sweep_end_to_completed_spine"],
        "level_ready_s": report.get("level_ready_s", {}),
        # each level's first publication (live or final), s after the sweep's end
        "first_published_after_sweep_end_s": report.get("first_published_after_sweep_end_s", {}),
        "live_completions": len(report.get("growth", [])),
        "coverage": report.get("coverage", {}),
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
