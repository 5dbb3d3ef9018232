"""``usx view``: the sweep in the Rerun viewer.

``--bag BAG --save FILE.rrd`` writes a recorded sweep as a Rerun recording;
``--serve`` shows the running graph live in a browser (with ``--bag BAG``: the recorded
sweep instead), on rerun-sdk's own server (one JSON line on stdout says where), until
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json

# stdlib only: rclpy and rerun are imported when a view runs (`usx --help` without ROS)
from usx_ros.tools.interrupt import sigterm_as_interrupt
from usx_ros.tools.view_serve import DEFAULT_GRPC_PORT, DEFAULT_WEB_PORT


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "view",
        help="the sweep in Rerun: a recording (.rrd) or a live browser view",
        description=__doc__,
    )
    p.add_argument("--bag", help="rosbag2 folder (e.g. out/demo/bag); without it --serve is live")
    p.add_argument("--save", metavar="FILE.rrd", help="write the bag as a Rerun recording")
    p.add_argument("--serve", action="store_true", help="serve a web viewer until Ctrl-C")
    p.add_argument("--port", type=int, default=DEFAULT_GRPC_PORT, help="gRPC port (--serve)")
    p.add_argument(
        "--web-port", type=int, default=DEFAULT_WEB_PORT, help="web viewer port (--serve)"
    )
    p.add_argument(
        "--bind",
        default="127.0.0.1",
        metavar="ADDR",
        help="IP address both servers listen on (--serve; 0.0.0.0: every interface)",
    )
    p.add_argument("--calibration", default=None, help="probe calibration (default: shipped)")
    p.add_argument("--robot-name", default="lbr", help="prefix of the joint names")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.serve == bool(args.save):
        raise ValueError("expected one of --save FILE.rrd and --serve")
    if args.save:
        if not args.bag:
            raise ValueError("--save: expected --bag BAG (a live view is served, not saved)")
        if not args.save.endswith(".rrd"):
            raise ValueError(f"--save: expected a .rrd file, got {args.save}")
        from usx_ros.tools.view import write_recording

        counts = write_recording(args.bag, args.save, args.calibration, args.robot_name)
        print(json.dumps({"recording": args.save, **counts}))
        return 0
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    import rerun as rr

    from usx_ros.tools.rerun_log import RerunLogger
    from usx_ros.tools.view_serve import RerunServer

    # Before the server: bad arguments fail without one. The stream buffers until connected.
    if args.bag:
        from usx_ros.tools.bag import open_bag

        open_bag(args.bag).close()
    rec = rr.RecordingStream("usx")
    logger = RerunLogger(rec, args.calibration, args.robot_name)
    try:
        with sigterm_as_interrupt(), RerunServer(args.bind, args.port, args.web_port) as server:
            try:
                rec.connect_grpc(server.local_grpc_url)
                where = {"viewer": server.viewer_url, "grpc": server.grpc_url}
                print(json.dumps({**where, "source": args.bag or "live"}), flush=True)
                if args.bag:
                    from usx_ros.tools.view import log_bag

                    log_bag(args.bag, logger)
                    rec.flush()
                    server.wait()
                else:
                    from usx_ros.tools.view_live import spin

                    spin(logger, server.running)
            finally:
                rec.flush(timeout_sec=5.0)  # before the server stops
                rec.disconnect()
            if not server.running():
                raise OSError(f"the rerun server exited (code {server.returncode})")
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM, at any point: the way a served view ends
    return 0
