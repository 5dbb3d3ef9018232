"""The monitor participant of ``usx bench multihost``, run on the workstation side.

``python -m usx_ros.tools.multihost_monitor`` (inside the workstation's network
namespace) prints one JSON object per line on stdout, each with ``t``, the receive time
on ``time.monotonic()`` (CLOCK_MONOTONIC is one clock for every network namespace, so
the bench compares it with the times it took the link down and up):

- ``{"event": "frame", "stamp_ns": ...}``: a B-mode frame on ``/us/image`` (its header
  stamp, ns). The subscription takes the serialised bytes and reads only the stamp, so
  the monitor keeps up with 30 frames/s on a loaded machine;
- ``{"event": "sweep_active", "value": bool}``: ``/usx/phantom/sweep_active``;
- ``{"event": "phantom_status", "status": {...}}``: the phantom's per-pass counters;
- ``{"event": "sweep_report", ...}``: us_compounding's frame accounting;
- ``{"event": "completed_spine", "points": n}`` and
  ``{"event": "spine_completion", "status": {level: name}}``: the completion's results.

Runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import struct
import time

from rclpy.node import Node

from usx_ros.nodes.common import run_node

#: Bytes before the header stamp in a serialised message: the CDR encapsulation header.
_CDR_HEADER = 4


def frame_stamp_ns(data: bytes) -> int:
    """The header stamp (ns) of a serialised ``sensor_msgs/Image``.

    Args:
        data: the CDR bytes as rclpy hands them to a ``raw=True`` subscription; the
            Header (``builtin_interfaces/Time``: int32 sec, uint32 nanosec) comes first.

    Raises:
        ValueError: fewer bytes than an encapsulation header and a stamp.
    """
    if len(data) < _CDR_HEADER + 8:
        raise ValueError(f"expected a serialised message of >= 12 bytes, got {len(data)}")
    order = "<" if data[1] & 1 else ">"  # encapsulation CDR_LE (0x0001) or CDR_BE
    sec, nanosec = struct.unpack_from(f"{order}iI", data, _CDR_HEADER)
    return sec * 1_000_000_000 + nanosec


def _emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, "t": time.monotonic(), **fields}), flush=True)


def _subscribe(node) -> None:
    from sensor_msgs.msg import Image, PointCloud2
    from std_msgs.msg import Bool, String

    from usx_msgs.msg import SpineCompletion, SweepReport
    from usx_ros.completion_status import STATUS_NAME
    from usx_ros.qos import RESULT_QOS, SENSOR_QOS

    def on_frame(data: bytes) -> None:
        _emit("frame", stamp_ns=frame_stamp_ns(data))

    def on_report(msg: SweepReport) -> None:
        _emit(
            "sweep_report",
            frames_expected=msg.frames_expected,
            frames_placed=msg.frames_placed,
            frames_no_contact=msg.frames_no_contact,
            frames_lost=msg.frames_lost,
        )

    def on_completion(msg: SpineCompletion) -> None:
        status = {v.level: STATUS_NAME.get(v.status, str(v.status)) for v in msg.vertebrae}
        _emit("spine_completion", status=status)

    node.create_subscription(Image, "/us/image", on_frame, SENSOR_QOS, raw=True)
    node.create_subscription(
        Bool, "/usx/phantom/sweep_active", lambda m: _emit("sweep_active", value=m.data), RESULT_QOS
    )
    node.create_subscription(
        String,
        "/phantom/status",
        lambda m: _emit("phantom_status", status=json.loads(m.data)),
        RESULT_QOS,
    )
    node.create_subscription(SweepReport, "/usx/sweep_report", on_report, RESULT_QOS)
    node.create_subscription(
        PointCloud2,
        "/usx/completed_spine",
        lambda m: _emit("completed_spine", points=m.width * m.height),
        RESULT_QOS,
    )
    node.create_subscription(SpineCompletion, "/usx/spine_completion", on_completion, RESULT_QOS)


class MultihostMonitor(Node):
    """The monitor as a node, run like the product nodes (``nodes.common.run_node``)."""

    def __init__(self, **kwargs) -> None:
        super().__init__("usx_multihost_monitor", **kwargs)
        _subscribe(self)


def main(args: list[str] | None = None) -> None:
    run_node(MultihostMonitor, args)


if __name__ == "__main__":
    main()
