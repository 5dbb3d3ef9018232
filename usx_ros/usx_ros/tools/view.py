"""A recorded sweep in Rerun: ``usx view --bag BAG --save FILE.rrd`` (or ``--serve``).

The bag's messages go through ``tools/rerun_log.py``, on the bag's time line (the recorded
stamps); which entities they become is listed there. The viewer: ``rerun FILE.rrd``
(rerun-sdk's own binary) or any Rerun web viewer; ``usx view --bag BAG --serve`` serves
the recording to a browser (``tools/view_serve.py``).
"""

from __future__ import annotations

from pathlib import Path

import rerun as rr

from usx_ros.tools.bag import read_bag
from usx_ros.tools.rerun_log import TOPICS, RerunLogger


def log_bag(bag: str | Path, logger: RerunLogger) -> dict[str, int]:
    """Log the bag's usx topics with ``logger``; what was logged, by kind.

    Raises:
        ValueError: the bag is unreadable, holds none of the topics, or a message does
            not convert.
    """
    for r in read_bag(bag, TOPICS):
        logger.log(r.topic, r.deserialize(), r.stamp_ns)
    if not any(logger.counts.values()):
        raise ValueError(f"bag {bag}: none of {', '.join(TOPICS)} found")
    return dict(logger.counts)


def write_recording(
    bag: str | Path,
    out: str | Path,
    calibration: str | Path | None = None,
    robot_name: str = "lbr",
    pose_stride: int = 5,
    image_stride: int = 10,
) -> dict[str, int]:
    """Write the bag's sweep to a Rerun recording ``out`` (.rrd); what was logged, by kind.

    Raises:
        ValueError: the bag is unreadable, or holds none of the usx topics.
    """
    rec = rr.RecordingStream("usx")
    # Before the file sink: bad arguments leave no file. A stream without a sink buffers
    # what the logger logs at start and hands it to the sink set next.
    logger = RerunLogger(rec, calibration, robot_name, pose_stride, image_stride)
    rec.save(str(out))
    try:
        return log_bag(bag, logger)
    finally:
        rec.flush()
        rec.disconnect()
