"""us_compounding: tracked B-mode frames -> compounded volume + bone-surface points.

Subscribes to ``/us/image`` (mono8) and ``/usx/probe_pose`` (PoseStamped from
probe_tracker, base frame); every frame is placed with the probe pose interpolated at
its stamp (+ temporal offset), inserted into the volume and segmented
(``usx_model.compounding.bone_sweep.BoneSweep``). A sweep is started and stopped with
the std_srvs/Trigger services ``/usx/sweep/start``, ``/usx/sweep/stop`` and
``/usx/sweep/reset``, or by the edges of a std_msgs/Bool sweep-state topic. The start
service refuses while no probe pose has arrived within ``start_pose_max_age_s`` or no
image publisher has matched (the first frames would be lost); the topic edge does not
wait. A stopped
sweep closes once the frames acquired before the stop have arrived and found their poses
(``stop_settle_s``, ``stop_grace_s``), so a recorded sweep replays to the same frames
(the status reports a digest of the placed frames' stamps). On closing it publishes the
sweep's bone points on ``/usx/bone_points`` (PointCloud2, base frame, metres, reliable +
transient-local) and the covered voxels on ``/usx/coverage``, and optionally writes the
volume and coverage as NIfTI.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger
from threadpoolctl import threadpool_limits

from usx_model.base.points import thin_points
from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.compounding.bone_sweep import BoneSweep
from usx_model.compounding.nifti import save_volume_nifti
from usx_model.compounding.volume import CompoundingMode, VolumeGrid
from usx_model.segmentation.bone import BoneSegParams
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration
from usx_model.tracking.interpolation import PoseBuffer
from usx_ros.conversions import (
    image_to_array,
    points_mm_to_cloud,
    pose_to_transform_mm,
    stamp_to_ns,
)
from usx_ros.health import InputHealth
from usx_ros.nodes.common import run_node
from usx_ros.params import ParameterError, ParamSpec, declare_params
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS

PARAMS = (
    ParamSpec("image_topic", "/us/image", "B-mode frames (mono8)", read_only=True),
    ParamSpec("probe_pose_topic", "/usx/probe_pose", "probe poses, base frame", read_only=True),
    ParamSpec("bone_points_topic", "/usx/bone_points", "bone cloud output", read_only=True),
    ParamSpec("coverage_topic", "/usx/coverage", "covered voxel centres", read_only=True),
    ParamSpec(
        "sweep_active_topic",
        "",
        "Bool sweep state; rising edge starts, falling edge stops ('' = services only)",
        read_only=True,
    ),
    ParamSpec(
        "service_prefix", "/usx/sweep", "prefix of the start/stop/reset services", read_only=True
    ),
    ParamSpec("base_frame", "lbr_link_0", "robot base frame", read_only=True),
    ParamSpec("rows", 512, "image rows", min_value=8, max_value=4096, read_only=True),
    ParamSpec("cols", 512, "image columns", min_value=8, max_value=4096, read_only=True),
    ParamSpec(
        "spacing_mm",
        [0.15, 0.15],
        "pixel size (lateral, depth), mm",
        list_of=float,
        length=2,
        min_value=1e-3,
        max_value=10.0,
        read_only=True,
    ),
    ParamSpec(
        "probe_image_xyz_mm",
        [0.0, 0.0, 0.0],
        "T_probe_image translation, mm",
        list_of=float,
        length=3,
        read_only=True,
    ),
    ParamSpec(
        "probe_image_rpy_deg",
        [90.0, 0.0, 0.0],
        "T_probe_image rotation (URDF rpy)",
        list_of=float,
        length=3,
        read_only=True,
    ),
    ParamSpec(
        "volume_min_mm",
        [350.0, -150.0, -150.0],
        "compounding volume lower corner, base frame, mm",
        list_of=float,
        length=3,
        read_only=True,
    ),
    ParamSpec(
        "volume_max_mm",
        [850.0, 150.0, 250.0],
        "compounding volume upper corner",
        list_of=float,
        length=3,
        read_only=True,
    ),
    ParamSpec("voxel_mm", 1.0, "voxel size, mm", min_value=0.1, max_value=10.0, read_only=True),
    ParamSpec(
        "mode",
        "mean",
        "compounding of overlapping pixels",
        choices=("mean", "maximum", "latest"),
        read_only=True,
    ),
    ParamSpec(
        "memory_budget_mb",
        1024,
        "refuse volumes larger than this",
        min_value=1,
        max_value=65536,
        read_only=True,
    ),
    ParamSpec(
        "pose_tolerance_s",
        0.05,
        "largest gap to a bracketing pose",
        min_value=1e-4,
        max_value=1.0,
        read_only=True,
    ),
    ParamSpec(
        "temporal_offset_s",
        0.0,
        "added to image stamps (image vs robot clock)",
        min_value=-1.0,
        max_value=1.0,
        read_only=True,
    ),
    ParamSpec(
        "max_pending",
        90,
        "frames held while their pose is awaited (a jitter buffer: the pose stream lags "
        "the images by the tracker's hop)",
        min_value=1,
        max_value=1000,
        read_only=True,
    ),
    ParamSpec(
        "start_pose_max_age_s",
        1.0,
        "the start service refuses a sweep until a probe pose has arrived within this long "
        "and the image stream has a publisher (0 = start regardless): frames before the "
        "first pose cannot be placed, s",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "stop_grace_s",
        1.0,
        "after a stop, held frames wait for their poses until none has arrived for this long",
        min_value=0.0,
        max_value=10.0,
    ),
    ParamSpec(
        "stop_settle_s",
        0.05,
        "after a stop, frames acquired before it are still taken for this long (an image "
        "in flight when the stop arrived; every ms of it delays the sweep's bone points)",
        min_value=0.0,
        max_value=5.0,
    ),
    ParamSpec(
        "stop_timeout_s",
        10.0,
        "the longest a stop waits for held frames, poses arriving or not",
        min_value=0.0,
        max_value=60.0,
    ),
    ParamSpec(
        "min_confidence",
        0.0,
        "bone pixels below this confidence are ignored",
        min_value=0.0,
        max_value=1.0,
    ),
    ParamSpec("save_volume_dir", "", "write volume.nii.gz + coverage.nii.gz at stop ('' = no)"),
    ParamSpec(
        "bone_points_voxel_mm",
        0.5,
        "publish one bone point per voxel of this size (0 = every segmented pixel); "
        "a three-pass sweep segments ~4e5 points at 0.15 mm pixels, and every consumer "
        "thins to 1-2 mm anyway",
        min_value=0.0,
        max_value=5.0,
    ),
)


@dataclass(frozen=True)
class _Closing:
    """A stopped sweep not yet closed: when the stop came (monotonic s) and the image-clock
    stamp (ns) up to which late frames still belong to it (None: no frame yet)."""

    since: float
    last_stamp_ns: int | None


class UsCompounding(Node):
    """Compounds tracked frames and collects bone points per sweep."""

    def __init__(self, **kwargs) -> None:
        super().__init__("us_compounding", **kwargs)
        self.p = p = declare_params(self, PARAMS)
        # Per-frame work (segmentation, insertion) is too small to split across threads;
        # BLAS/OpenMP pools would only contend with the other nodes for the cores.
        threadpool_limits(limits=1)
        try:
            self.grid = VolumeGrid.from_bounds(
                p["volume_min_mm"], p["volume_max_mm"], p["voxel_mm"]
            )
            self._calibration = ProbeCalibration(
                ImageCalibration.centred_on_face(p["cols"], tuple(p["spacing_mm"])),
                np.eye(4),  # inputs are probe poses already (probe_tracker applies hand-eye)
                transform_from_xyz_rpy(p["probe_image_xyz_mm"], p["probe_image_rpy_deg"]),
            )
            self._new_sweep()  # validates the memory budget now, not at the first frame
        except ValueError as exc:
            raise ParameterError(f"compounding volume: {exc}") from exc
        self.health = InputHealth(self.get_logger())
        self.active = False
        self._closing: _Closing | None = None
        self.sweeps_completed = 0
        self._last_image_ns = -1
        self.frames_after_stop = 0  # this sweep's frames that arrived after its stop
        self.frames_outside_sweeps = 0  # frames that arrived with no sweep to take them
        self._last_image_at_ns = 0  # node clock when that frame arrived
        self._last_pose_at = -math.inf  # monotonic s
        self._last_points_mm = np.zeros((0, 3))
        # rclpy's executor serves ready subscriptions in creation order: a sweep start
        # that arrives together with the first frame is handled before it.
        if p["sweep_active_topic"]:
            self.create_subscription(Bool, p["sweep_active_topic"], self._on_active, RESULT_QOS)
        self._image_sub = self.create_subscription(
            Image, p["image_topic"], self._on_image, SENSOR_QOS
        )
        self.create_subscription(PoseStamped, p["probe_pose_topic"], self._on_pose, STATE_QOS)
        self.pub_points = self.create_publisher(PointCloud2, p["bone_points_topic"], RESULT_QOS)
        self.pub_coverage = self.create_publisher(PointCloud2, p["coverage_topic"], RESULT_QOS)
        # One JSON line per closed sweep (frames placed, drops by reason) for monitors.
        self.pub_status = self.create_publisher(String, "~/status", RESULT_QOS)
        prefix = p["service_prefix"].rstrip("/")
        self.create_service(Trigger, f"{prefix}/start", self._srv_start)
        self.create_service(Trigger, f"{prefix}/stop", self._srv_stop)
        self.create_service(Trigger, f"{prefix}/reset", self._srv_reset)
        self.create_timer(0.02, self._on_stop_tick)

    def _new_sweep(self) -> None:
        p = self.p
        previous = getattr(self, "sweep", None)
        # The pose stream runs on between sweeps; a start that arrives after the poses
        # around the first frame must not lose them.
        poses = (
            previous.sweep.poses.restarted()
            if previous is not None
            else PoseBuffer(
                tolerance_s=p["pose_tolerance_s"], temporal_offset_s=p["temporal_offset_s"]
            )
        )
        self.sweep = BoneSweep(
            self.grid,
            self._calibration,
            (p["rows"], p["cols"]),
            seg_params=BoneSegParams(pixel_mm=tuple(p["spacing_mm"])),
            mode=CompoundingMode(p["mode"]),
            memory_budget_bytes=int(p["memory_budget_mb"]) * 1024 * 1024,
            pose_buffer=poses,
            max_pending=p["max_pending"],
            min_confidence=p["min_confidence"],
        )

    # --- sweep control ---------------------------------------------------------------
    def start(self) -> str:
        if self.active:
            return "sweep already active"
        if self._closing is not None:  # close the previous sweep first
            self._on_stop_tick(force=True)
        self._new_sweep()
        self._last_image_ns = -1
        self.frames_after_stop = 0
        self.active = True
        return "sweep started"

    def stop(self) -> str:
        """End the sweep; it closes once the frames acquired before the stop are settled.

        Frames stamped before the stop that arrive within ``stop_settle_s`` are still
        taken, and held frames wait for their poses while poses keep arriving (a tracker
        that lags under load catches up), so a sweep and its replay place the same
        frames. The stop time in the image clock is estimated from the latest frame:
        its stamp plus the time since it arrived.
        """
        if not self.active:
            return "no active sweep"
        self.active = False
        now_ns = self.get_clock().now().nanoseconds
        last = self._last_image_ns
        self._closing = _Closing(
            since=time.monotonic(),
            last_stamp_ns=None if last < 0 else last + (now_ns - self._last_image_at_ns),
        )
        return f"sweep stopping: {self.sweep.frames_placed} frames placed so far"

    def _on_stop_tick(self, force: bool = False) -> None:
        closing = self._closing
        if closing is None:
            return
        p, now = self.p, time.monotonic()
        settling = now - closing.since < p["stop_settle_s"]
        poses_flowing = now - max(closing.since, self._last_pose_at) < p["stop_grace_s"]
        held = self.sweep.pending and poses_flowing and now - closing.since < p["stop_timeout_s"]
        if not force and (settling or held):
            return
        self._closing = None
        self._account(self.sweep.flush())
        self._publish_results()
        self.sweeps_completed += 1
        self.pub_status.publish(String(data=json.dumps(self.status())))
        self.get_logger().info(
            f"sweep closed: {self.sweep.frames_placed} frames placed, "
            f"{len(self._last_points_mm)} bone points, drops {dict(self.health.counts)}"
        )

    def not_ready(self) -> str | None:
        """Why a sweep started now would lose its first frames (None: it would not).

        The pose stream must be live end to end (tracker matched to the robot and to this
        node: a pose arrived within ``start_pose_max_age_s``) and the image stream matched.
        """
        max_age_s = self.p["start_pose_max_age_s"]
        if max_age_s == 0.0:
            return None
        age_s = time.monotonic() - self._last_pose_at
        if age_s > max_age_s:
            last = "none yet" if math.isinf(age_s) else f"the last {age_s:.1f} s ago"
            return (
                f"no probe pose on {self.p['probe_pose_topic']} within {max_age_s:g} s "
                f"({last}): is the probe tracker running?"
            )
        if self._image_sub.get_publisher_count() == 0:
            return f"no publisher on {self.p['image_topic']} has matched this node yet"
        return None

    def _srv_start(self, _req, resp):
        reason = None if self.active else self.not_ready()
        if reason is not None:
            resp.success, resp.message = False, f"sweep not started: {reason}"
        else:
            resp.success, resp.message = True, self.start()
        return resp

    def _srv_stop(self, _req, resp):
        msg = self.stop()
        resp.success, resp.message = msg != "no active sweep", msg
        return resp

    def _srv_reset(self, _req, resp):
        self._new_sweep()
        self.active = False
        self._closing = None
        resp.success, resp.message = True, "sweep discarded"
        return resp

    def _on_active(self, msg: Bool) -> None:
        if msg.data and not self.active:
            self.start()
        elif not msg.data and self.active:
            self.stop()

    # --- streams ----------------------------------------------------------------------
    def _on_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self.p["base_frame"]):
            self.health.reject("wrong_frame", f"pose in {msg.header.frame_id!r}")
            return
        try:
            T = pose_to_transform_mm(msg.pose)
        except ValueError as exc:
            self.health.reject("invalid_pose", str(exc))
            return
        reason, released = self.sweep.add_pose(stamp_to_ns(msg.header.stamp), T)
        if reason is None:
            self._last_pose_at = time.monotonic()
        else:
            self.health.reject(reason, f"pose at {stamp_to_ns(msg.header.stamp)} ns rejected")
        self._account(released)

    def _on_image(self, msg: Image) -> None:
        if not (self.active or self._late_frame(msg)):
            self.frames_outside_sweeps += 1
            return
        try:
            image = image_to_array(msg, ("mono8", "8UC1"))
            stamp = stamp_to_ns(msg.header.stamp)
            if stamp <= self._last_image_ns:
                raise ValueError(f"stamp {stamp} ns not after the previous {self._last_image_ns}")
            reports = self.sweep.add_frame(stamp, image)
        except ValueError as exc:
            reason = "out_of_order" if "not after" in str(exc) else "invalid_image"
            self.health.reject(reason, str(exc))
            return
        self._last_image_ns = stamp
        self._last_image_at_ns = self.get_clock().now().nanoseconds
        if not self.active:
            self.frames_after_stop += 1
        self._account(reports)

    def _late_frame(self, msg: Image) -> bool:
        """A frame acquired before the stop that arrived after it (still settling)."""
        closing = self._closing
        if closing is None or closing.last_stamp_ns is None:
            return False
        # The stop estimate jitters with transport latency: allow the pose tolerance
        # (50 ms by default, 1.5 frame periods at 30 Hz).
        slack_ns = int(self.p["pose_tolerance_s"] * 1e9)
        return stamp_to_ns(msg.header.stamp) <= closing.last_stamp_ns + slack_ns

    def _account(self, reports) -> None:
        """Count settled frames: placed ones as accepted, the others by drop reason."""
        for r in reports:
            if r.placed:
                self.health.accept()
            else:
                self.health.reject(r.reason or "dropped", f"frame at {r.stamp_ns} ns")

    # --- results ----------------------------------------------------------------------
    def _publish_results(self) -> None:
        header = Header(frame_id=self.p["base_frame"])
        header.stamp = self.get_clock().now().to_msg()
        self._last_points_mm = self.sweep.bone_points_mm()
        if self.p["bone_points_voxel_mm"] > 0:
            self._last_points_mm = thin_points(self._last_points_mm, self.p["bone_points_voxel_mm"])
        self.pub_points.publish(points_mm_to_cloud(self._last_points_mm, header))
        self.pub_coverage.publish(points_mm_to_cloud(self.sweep.coverage_points_mm(), header))
        if self.p["save_volume_dir"]:
            out = Path(self.p["save_volume_dir"])
            out.mkdir(parents=True, exist_ok=True)
            res = self.sweep.result()
            t0 = time.perf_counter()
            save_volume_nifti(out / "volume.nii.gz", res.value, res.grid)
            save_volume_nifti(out / "coverage.nii.gz", res.coverage.astype(np.float32), res.grid)
            self.get_logger().info(f"volume written to {out} in {time.perf_counter() - t0:.1f} s")

    def status(self) -> dict:
        """Counters of the last closed sweep (and totals of rejected input)."""
        return {
            "frames_placed": self.sweep.frames_placed,
            "frames_digest": self.sweep.placed_digest,
            "frames_after_stop": self.frames_after_stop,
            "frames_outside_sweeps": self.frames_outside_sweeps,
            "frames_dropped": int(sum(self.sweep.dropped.values())),
            "drops_by_reason": dict(self.sweep.dropped),
            "rejected_input": dict(self.health.counts),
            "bone_points": len(self._last_points_mm),
            "sweeps_completed": self.sweeps_completed,
        }

    @property
    def bone_points_mm(self) -> np.ndarray:
        """The last completed sweep's bone points (base frame, mm)."""
        return self._last_points_mm


def main(args: list[str] | None = None) -> None:
    run_node(UsCompounding, args)


if __name__ == "__main__":
    main()
