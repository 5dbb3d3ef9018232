"""``usx bag reindex BAG``: make a bag whose recorder was killed readable again."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bag", help="rosbag2 (MCAP) bag tools", description=__doc__)
    sub = p.add_subparsers(dest="bag_command", metavar="ACTION")
    sub.required = True
    r = sub.add_parser(
        "reindex",
        help="rewrite a bag cut off by a crash (no summary, no metadata.yaml) as a complete one",
        description="Reads the MCAP records up to the first cut-off or corrupt one and writes "
        "them as a complete bag (summary, footer, metadata.yaml). Prints a JSON report.",
    )
    r.add_argument("bag", help="rosbag2 folder holding one .mcap file")
    r.add_argument(
        "--out",
        default=None,
        help="write a new bag folder here (default: repair BAG in place, keeping the damaged "
        "file as <name>.mcap.orig)",
    )
    r.set_defaults(func=_reindex)


def _reindex(args: argparse.Namespace) -> int:
    from usx_ros.tools.bag_reindex import reindex_bag

    print(json.dumps(reindex_bag(args.bag, args.out).as_dict()))
    return 0
