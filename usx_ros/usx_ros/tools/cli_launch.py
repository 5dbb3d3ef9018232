"""``usx launch GRAPH``: start a node graph here, without ``ros2 launch``."""

from __future__ import annotations

import argparse

from usx_ros.graph import GRAPHS


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "launch",
        help="start a usx node graph (same nodes and parameters as launch/*.launch.py)",
        description=__doc__,
    )
    p.add_argument("graph", choices=sorted(GRAPHS), help="which graph")
    p.add_argument("--config", default=None, help="parameter YAML (default: config/GRAPH.yaml)")
    p.add_argument("--isolated", action="store_true", help="one process per node")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument(
        "--record",
        default=None,
        metavar="DIR",
        help="also run bag_record (restarted like the other nodes): every start writes a new "
        "bag DIR/NNN_YYYYMMDDTHHMMSSZ",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from usx_ros.tools.launcher import launch_in_process, launch_isolated

    if args.isolated:
        return launch_isolated(args.graph, args.config, args.duration, record_dir=args.record)
    return launch_in_process(args.graph, args.config, args.duration, record_dir=args.record)
