"""Publisher half of the cross-process message test; run as a separate process.

Publishes one deterministic ``usx_msgs/SpineCompletion`` (reliable, transient-local)
built by ``make_spine_completion(seed, n)`` and keeps it available until killed or
until ``--linger-s`` passes. ``--corrupt-byte K`` flips byte K of the first cloud's
payload after building it, so the receiver's check can be shown to fail.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header

from usx_msgs.msg import SpineCompletion, VertebraCompletion
from usx_ros.conversions import points_mm_to_cloud, seconds_to_duration
from usx_ros.dds import configure_dds

RESULT_QOS = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def make_spine_completion(seed: int, n_points: int) -> SpineCompletion:
    """A SpineCompletion with five vertebrae of random points, identical for a given seed."""
    rng = np.random.default_rng(seed)
    msg = SpineCompletion()
    msg.header = Header(frame_id="lbr_link_0")
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1_700_000_000, 123_456_789
    for level in range(1, 6):
        pts_mm = rng.normal(0.0, 30.0, size=(n_points, 3)) + np.array([0.0, 0.0, 35.0 * level])
        unc_m = rng.uniform(0.0, 0.004, size=n_points).astype(np.float32)
        cloud = points_mm_to_cloud(
            pts_mm,
            msg.header,
            extra={"uncertainty": unc_m, "level": np.full(n_points, level, dtype=np.uint8)},
        )
        msg.vertebrae.append(
            VertebraCompletion(
                header=msg.header,
                level=f"L{level}",
                cloud=cloud,
                used_ultrasound=True,
                used_xray=bool(level % 2),
                num_us_points=512,
                num_xray_points=256 if level % 2 else 0,
                status=VertebraCompletion.STATUS_OK,
            )
        )
    msg.latency = seconds_to_duration(0.25)
    msg.model_id = f"test-seed-{seed}"
    msg.device = "cpu"
    return msg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--topic", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--corrupt-byte", type=int, default=None)
    parser.add_argument("--linger-s", type=float, default=60.0)
    args = parser.parse_args()

    msg = make_spine_completion(args.seed, args.points)
    if args.corrupt_byte is not None:
        data = bytearray(msg.vertebrae[0].cloud.data)
        data[args.corrupt_byte] ^= 0xFF
        msg.vertebrae[0].cloud.data = bytes(data)

    configure_dds()
    rclpy.init()
    node = rclpy.create_node("usx_test_spine_publisher")
    pub = node.create_publisher(SpineCompletion, args.topic, RESULT_QOS)
    pub.publish(msg)
    print("published", flush=True)
    deadline = time.monotonic() + args.linger_s
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
