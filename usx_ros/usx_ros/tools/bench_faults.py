"""``usx bench faults``: ``kill -9`` each node of the recording phantom graph mid-sweep.

Launches ``usx launch phantom --isolated --record DIR`` with the phantom sweeping in a
loop (faster than in config/phantom.yaml, so that five kills, each followed by a
completed sweep, take a few minutes), waits for a first completed sweep (its duration
sets the kill point, ``--kill-at`` of a sweep after its start), then kills each node in
turn and reports, per node, whether it came back (``recover_s``), whether the next sweep
completed, whether the bags read to the end (after ``usx bag reindex``) and what the
kill cost the recording. Definitions: ``usx_ros.tools.faults``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

NAME = "faults"
HELP = "kill -9 each node of the recording phantom graph mid-sweep: recovery, next sweep, bags"


def add_arguments(parser) -> None:
    from usx_ros.tools.faults_config import DEFAULT_NODES, FaultsConfig

    d = FaultsConfig()
    parser.add_argument(
        "--nodes",
        default=",".join(DEFAULT_NODES),
        help="comma-separated nodes to kill, in this order",
    )
    parser.add_argument("--sweep-speed", type=float, default=d.sweep_speed_mm_s, help="mm/s")
    parser.add_argument(
        "--loop-pause", type=float, default=d.loop_pause_s, help="pause between sweeps, s"
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=d.kill_at,
        help="kill at this fraction of a sweep (the first sweep's duration) after its start",
    )
    parser.add_argument(
        "--kill-after", type=float, default=None, help="instead: kill this long into a sweep, s"
    )
    parser.add_argument("--step-timeout", type=float, default=d.step_timeout_s, help="per kill, s")
    parser.add_argument(
        "--keep", default=None, metavar="DIR", help="keep the parameter file and bags here"
    )


def run(args) -> dict:
    import rclpy

    from usx_ros.dds import configure_dds
    from usx_ros.tools.faults import run_faults
    from usx_ros.tools.faults_config import FaultsConfig

    cfg = FaultsConfig(
        nodes=tuple(n.strip() for n in args.nodes.split(",") if n.strip()),
        sweep_speed_mm_s=args.sweep_speed,
        loop_pause_s=args.loop_pause,
        kill_at=args.kill_at,
        kill_after_s=args.kill_after,
        step_timeout_s=args.step_timeout,
    )
    context = rclpy.context.Context()
    configure_dds()
    rclpy.init(context=context)
    try:
        if args.keep:
            return run_faults(cfg, Path(args.keep), context)
        with tempfile.TemporaryDirectory(prefix="usx_bench_faults_") as out:
            return run_faults(cfg, Path(out), context)
    finally:
        context.try_shutdown()
