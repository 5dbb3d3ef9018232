"""``usx view --bag BAG --save FILE.rrd``: a recorded sweep as a Rerun recording."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view", help="write a recorded sweep as a Rerun recording (.rrd)", description=__doc__
    )
    p.add_argument("--bag", required=True, help="rosbag2 folder (e.g. out/demo/bag)")
    p.add_argument("--save", required=True, metavar="FILE.rrd", help="the recording to write")
    p.add_argument("--calibration", default=None, help="probe calibration (default: shipped)")
    p.add_argument("--robot-name", default="lbr", help="prefix of the joint names")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from usx_ros.tools.view import write_recording

    if not args.save.endswith(".rrd"):
        raise ValueError(f"--save: expected a .rrd file, got {args.save}")
    counts = write_recording(args.bag, args.save, args.calibration, args.robot_name)
    print(json.dumps({"recording": args.save, **counts}))
    return 0
