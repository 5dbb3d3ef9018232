"""us_compounding: tracked B-mode frames -> compounded volume + bone-surface points.

Subscribes to ``/us/image`` (mono8) and ``/usx/probe_pose`` (PoseStamped from
probe_tracker, base frame); every frame is placed with the probe pose interpolated at
its stamp (+ temporal offset), inserted into the volume and segmented
(``usx_model.compounding.bone_sweep.BoneSweep``); pixel spacing, image origin and
``T_probe_image`` come from the probe calibration file (``probe_calibration``). A sweep is
recorded with the ``/usx/sweep/record`` action (``usx_msgs/action/RecordSweep``: goal =
sweep id, levels, duration; feedback = frames placed and dropped by reason, probe speed and
warnings; result = the sweep's frame accounting; cancel = discard; see
``usx_ros.sweep_action``) or, for a robot program without actions, with the std_srvs/Trigger
services ``/usx/sweep/start`` and ``/usx/sweep/stop`` (``/usx/sweep/stop`` also ends a
goal's sweep of ``duration_s`` 0); with ``sweep_source: topic`` (a replayed bag) by the
edges of the std_msgs/Bool ``/usx/sweep/active`` instead (``/usx/sweep/reset`` always). A
goal and the start service are refused while no probe pose has arrived within
``start_pose_max_age_s`` or no image publisher has matched (the first frames would be
lost); the topic edge does not wait. A stopped sweep closes
once the frames acquired before the stop have arrived and found their poses
(``stop_settle_s``, ``stop_grace_s``), so a recorded sweep replays to the same frames (the
status reports a digest of the placed frames' stamps). Every sweep has an id (a goal's, or
one the node gives a sweep started by service or topic) that each of its messages carries.
On closing it publishes the sweep's frame accounting (``/usx/sweep_report``), its bone
points on ``/usx/sweep/bone_points`` (``usx_msgs/SweepCloud``: sweep id + PointCloud2,
base frame, metres, reliable + transient-local; what xray_ingest and completion join on)
and the same cloud on ``/usx/bone_points`` for viewers and bags, the covered voxels on
``/usx/coverage``, and optionally writes the
volume and coverage as NIfTI. While a goal's sweep records, once a level is covered, the
bone points so far go out every ``live_period_s`` on ``/usx/sweep/live_points``
(``usx_msgs/SweepPoints``: sweep id, each level's coverage) for the live completion. When a
sweep has stopped, its points go out there once more (``closing``) before the breathing fit,
so that xray_ingest places the X-ray on them on the other core meanwhile.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger
from threadpoolctl import threadpool_limits

from usx_model.base.points import THIN_VOXEL_MM, thin_points
from usx_model.compounding.bone_sweep import BoneSweep
from usx_model.compounding.breathing import estimate_breathing
from usx_model.compounding.breathing import warm_up as warm_up_breathing
from usx_model.compounding.insert import warm_up as warm_up_compounding
from usx_model.compounding.live_points import LivePointsSchedule
from usx_model.compounding.nifti import save_compounding_nifti
from usx_model.compounding.session import SessionTiming, StampRejected, SweepSession
from usx_model.compounding.sweep_protocol import SweepProtocol
from usx_model.compounding.volume import CompoundingMode, VolumeGrid
from usx_model.levels.coverage import MIN_PLANE_POINTS, LevelBands, bands_from_xray
from usx_model.segmentation.bone import BoneSegParams
from usx_model.segmentation.bone import warm_up as warm_up_segmentation
from usx_model.segmentation.contact import ContactParams
from usx_model.tracking.calibration import ProbeCalibration
from usx_model.tracking.interpolation import PoseBuffer
from usx_msgs.msg import SweepCloud, SweepPoints, SweepReport, XrayView
from usx_ros.conversions import (
    image_to_array,
    points_mm_to_cloud,
    pose_to_transform_mm,
    stamp_to_ns,
    sweep_report_msg,
    xray_view_from_msg,
)
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT, WARN, NodeDiagnostics
from usx_ros.health import InputHealth
from usx_ros.interfaces import Endpoint
from usx_ros.memory import trim_heap
from usx_ros.nodes.common import PROBE_CALIBRATION_DOC, load_calibration, run_node
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.qos import LIVE_QOS, RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.sweep_action import ACTION_NAME, MARKERS_TOPIC, SweepActionServer


@dataclass(frozen=True)
class CompoundingParams:
    """Parameters of us_compounding."""

    base_frame: str = param("lbr_link_0", "robot base frame", read_only=True)
    probe_calibration: str = param("", PROBE_CALIBRATION_DOC, read_only=True)
    sweep_source: str = param(
        "service",
        "what starts and stops a sweep: the /usx/sweep/start and /stop services, or the "
        "edges of the Bool /usx/sweep/active (a replayed bag holds no service calls)",
        choices=("service", "topic"),
        read_only=True,
    )
    rows: int = param(512, "image rows", min_value=8, max_value=4096, read_only=True)
    cols: int = param(512, "image columns", min_value=8, max_value=4096, read_only=True)
    volume_min_mm: tuple[float, ...] = param(
        (540.0, -150.0, 40.0),
        "compounding volume lower corner, base frame, mm",
        length=3,
        read_only=True,
    )
    volume_max_mm: tuple[float, ...] = param(
        (690.0, 140.0, 210.0), "compounding volume upper corner", length=3, read_only=True
    )
    voxel_mm: float = param(1.0, "voxel size, mm", min_value=0.1, max_value=10.0, read_only=True)
    mode: str = param(
        "mean",
        "compounding of overlapping pixels",
        choices=("mean", "maximum", "latest"),
        read_only=True,
    )
    memory_budget_mb: int = param(
        1024, "refuse volumes larger than this", min_value=1, max_value=65536, read_only=True
    )
    pose_tolerance_s: float = param(
        0.05, "largest gap to a bracketing pose", min_value=1e-4, max_value=1.0, read_only=True
    )
    max_pending: int = param(
        90,
        "frames held while their pose is awaited (a jitter buffer: the pose stream lags "
        "the images by the tracker's hop)",
        min_value=1,
        max_value=1000,
        read_only=True,
    )
    start_pose_max_age_s: float = param(
        1.0,
        "the start service refuses a sweep until a probe pose has arrived within this long "
        "and the image stream has a publisher (0 = start regardless): frames before the "
        "first pose cannot be placed, s",
        min_value=0.0,
        max_value=60.0,
    )
    stop_grace_s: float = param(
        1.0,
        "after a stop, held frames wait for their poses until none has arrived for this long",
        min_value=0.0,
        max_value=10.0,
    )
    stop_settle_s: float = param(
        0.05,
        "after a stop, frames acquired before it are still taken for this long (an image "
        "in flight when the stop arrived; every ms of it delays the sweep's bone points)",
        min_value=0.0,
        max_value=5.0,
    )
    stop_timeout_s: float = param(
        10.0,
        "the longest a stop waits for held frames, poses arriving or not",
        min_value=0.0,
        max_value=60.0,
    )
    max_stamp_step_s: float = param(
        5.0,
        "largest step of an image stamp after the sweep's last accepted one; a frame beyond "
        "it is rejected (stamp_jump) and its stamp not adopted, s",
        min_value=0.001,
        max_value=3600.0,
        read_only=True,
    )
    stamp_recover_count: int = param(
        5,
        "consecutive consistent image stamps, all rejected against the old reference, after "
        "which the sweep follows the new timeline",
        min_value=2,
        max_value=1000,
        read_only=True,
    )
    min_confidence: float = param(
        0.0, "bone pixels below this confidence are ignored", min_value=0.0, max_value=1.0
    )
    min_contact_fraction: float = param(
        0.5,
        "a frame whose share of coupled (tissue-imaging) columns is below this has lost "
        "probe contact and is dropped (no_contact); in kept frames uncoupled columns give no "
        "bone points (0 = keep every frame)",
        min_value=0.0,
        max_value=1.0,
        read_only=True,
    )
    breathing_compensation: bool = param(
        True,
        "fit the patient's breathing to the sweep's bone surface (passes that image the same "
        "bone at different times) and remove it from the bone points; applied only when "
        "significant, so a still patient's points stay as they are",
    )
    save_volume_dir: str = param("", "write volume.nii.gz + coverage.nii.gz at stop ('' = no)")
    max_frame_spacing_mm: float = param(
        2.0,
        "RecordSweep feedback warns when consecutive placed frames lie farther apart (the "
        "probe moves too fast for the frame rate: gaps in the volume), mm",
        min_value=0.01,
        max_value=100.0,
    )
    min_level_coverage: float = param(
        0.5,
        "a level counts as covered once this fraction of its expected US-visible surface "
        "(its X-ray band, 20 mm either side of the midline, 2 mm cells) holds bone points; "
        "a complete phantom sweep ends at 0.95-1.0 for L2-L4, 0.6-0.8 for L1 and L5",
        min_value=0.0,
        max_value=1.0,
    )
    max_sweep_duration_s: float = param(
        600.0,
        "the longest duration_s a RecordSweep goal may ask for, s",
        min_value=1.0,
        max_value=86400.0,
        read_only=True,
    )
    feedback_period_s: float = param(
        0.2, "RecordSweep feedback period, s", min_value=0.01, max_value=10.0, read_only=True
    )
    client_lost_s: float = param(
        1.0,
        "a RecordSweep goal's sweep is aborted (discarded) once no client has read its "
        "feedback for this long (the client crashed or was unplugged), s",
        min_value=0.1,
        max_value=60.0,
        read_only=True,
    )
    volume_pixel_stride: int = param(
        0,
        "insert every n-th row and column of a frame into the volume (0 = the largest "
        "stride that keeps pixels within two thirds of a voxel: 2 for 0.15 mm pixels and "
        "0.5 mm voxels); the bone points always come from every pixel",
        min_value=0,
        max_value=16,
        read_only=True,
    )
    live_period_s: float = param(
        1.0,
        "during a RecordSweep goal, publish the sweep's bone points so far on "
        "/usx/sweep/live_points at most this often once a level is covered, for the live "
        "completion (0 = never), s",
        min_value=0.0,
        max_value=60.0,
    )
    bone_points_voxel_mm: float = param(
        THIN_VOXEL_MM,
        "publish one bone point per voxel of this size (0 = every segmented pixel): the "
        "sweep's one thinning. At the completion's own size (the default), its thinning and "
        "the X-ray placement's at twice the size give what they would on every point: the "
        "voxels of one grid nest (a three-pass sweep segments ~4e5 points at 0.15 mm "
        "pixels)",
        min_value=0.0,
        max_value=5.0,
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = CompoundingParams

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint("subscribes", "/us/image", "sensor_msgs/msg/Image", "SENSOR_QOS", "mono8"),
    Endpoint("subscribes", "/usx/probe_pose", "geometry_msgs/msg/PoseStamped", "STATE_QOS"),
    Endpoint(
        "subscribes", "/usx/sweep/active", "std_msgs/msg/Bool", "RESULT_QOS", "sweep_source: topic"
    ),
    Endpoint("serves", ACTION_NAME, "usx_msgs/action/RecordSweep", note="sweep_source: service"),
    Endpoint("serves", "/usx/sweep/start", "std_srvs/srv/Trigger", note="sweep_source: service"),
    Endpoint("serves", "/usx/sweep/stop", "std_srvs/srv/Trigger", note="sweep_source: service"),
    Endpoint("serves", "/usx/sweep/reset", "std_srvs/srv/Trigger"),
    Endpoint(
        "subscribes", "/usx/xray", "usx_msgs/msg/XrayView", "RESULT_QOS", "level bands (coverage)"
    ),
    Endpoint(
        "publishes",
        MARKERS_TOPIC,
        "visualization_msgs/msg/MarkerArray",
        "RESULT_QOS",
        "per-level coverage during a RecordSweep goal",
    ),
    Endpoint("publishes", "/usx/sweep_report", "usx_msgs/msg/SweepReport", "RESULT_QOS"),
    Endpoint(
        "publishes",
        "/usx/sweep/bone_points",
        "usx_msgs/msg/SweepCloud",
        "RESULT_QOS",
        "a closed sweep's bone points, with its id",
    ),
    Endpoint(
        "publishes",
        "/usx/bone_points",
        "sensor_msgs/msg/PointCloud2",
        "RESULT_QOS",
        "the same cloud, for viewers and bags",
    ),
    Endpoint(
        "publishes",
        "/usx/sweep/live_points",
        "usx_msgs/msg/SweepPoints",
        "LIVE_QOS",
        "bone points so far, during a RecordSweep goal",
    ),
    Endpoint("publishes", "/usx/coverage", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("publishes", "~/status", "std_msgs/msg/String", "RESULT_QOS", "one JSON per sweep"),
)


class UsCompounding(ManagedNode):
    """Compounds tracked frames and collects bone points per sweep."""

    params: CompoundingParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("us_compounding", **kwargs)

    def configure(self) -> None:
        """Validate the parameters, load what the node needs, create its entities."""
        p = declare_params(self, CompoundingParams)
        calibration = load_calibration(p.probe_calibration)
        u0 = calibration.image.origin_px[0]
        if not -0.5 <= u0 <= p.cols - 0.5:
            raise ParameterError(
                f"parameter 'probe_calibration': image origin column {u0:g} lies outside "
                f"the {p.cols}-column image (a calibration for another image width?)"
            )
        # Per-frame work (segmentation, insertion) is too small to split across threads;
        # BLAS/OpenMP pools would only contend with the other nodes for the cores.
        threadpool_limits(limits=1)
        # the compiled scatter's first call (~0.6 s) must not fall into the first sweep
        warm_up_compounding(CompoundingMode(p.mode))
        warm_up_segmentation()  # and the compiled bone score's
        if p.breathing_compensation:  # likewise the fit's compiled grouping, at sweep end
            warm_up_breathing()
        try:
            self.grid = VolumeGrid.from_bounds(p.volume_min_mm, p.volume_max_mm, p.voxel_mm)
            # Inputs are probe poses already (probe_tracker applies the hand-eye T_ee_probe).
            self._calibration = ProbeCalibration(
                calibration.image, np.eye(4), calibration.T_probe_image
            )
            # validates the memory budget now, not at the first frame
            self.session = SweepSession(
                self._new_sweep,
                SessionTiming(
                    stop_settle_s=p.stop_settle_s,
                    stop_grace_s=p.stop_grace_s,
                    stop_timeout_s=p.stop_timeout_s,
                    pose_tolerance_s=p.pose_tolerance_s,
                    max_stamp_step_s=p.max_stamp_step_s,
                    stamp_recover_count=p.stamp_recover_count,
                ),
                # ids of sweeps started by service or topic: unique across restarts
                id_prefix=f"{self.get_name()}-{self.get_clock().now().nanoseconds // 10**6}-",
            )
        except ValueError as exc:
            raise ParameterError(f"compounding volume: {exc}") from exc
        self.health = InputHealth(self.get_logger())
        self._last_points_mm = np.zeros((0, 3))
        self._breathing = None
        self._results_took: dict[str, float] = {}  # the last close's results stages, s
        self._xray = self._xray_bands = None  # the latest X-ray and its registered bands
        # rclpy's executor serves ready subscriptions in creation order: a sweep start
        # that arrives together with the first frame is handled before it.
        if p.sweep_source == "topic":
            self.create_subscription(Bool, "/usx/sweep/active", self._on_active, RESULT_QOS)
        self._image_sub = self.create_subscription(Image, "/us/image", self._on_image, SENSOR_QOS)
        self._pose_sub = self.create_subscription(
            PoseStamped, "/usx/probe_pose", self._on_pose, STATE_QOS
        )
        self.pub_report = self.create_publisher(SweepReport, "/usx/sweep_report", RESULT_QOS)
        self.pub_points = self.create_publisher(PointCloud2, "/usx/bone_points", RESULT_QOS)
        self.pub_sweep_points = self.create_publisher(
            SweepCloud, "/usx/sweep/bone_points", RESULT_QOS
        )
        self.pub_coverage = self.create_publisher(PointCloud2, "/usx/coverage", RESULT_QOS)
        # One JSON line per closed sweep (frames placed, drops by reason) for monitors.
        self.pub_status = self.create_publisher(String, "~/status", RESULT_QOS)
        self.diagnostics = NodeDiagnostics(self, self.health, self.status, self._diagnose)
        self.sweeps: SweepActionServer | None = None
        self.pub_live = self.create_publisher(SweepPoints, "/usx/sweep/live_points", LIVE_QOS)
        # the last live points: sweep id, sequence, when, the levels covered then
        self._live = LivePointsSchedule(p.live_period_s)
        if p.sweep_source == "service":
            self.create_service(Trigger, "/usx/sweep/start", self._srv_start)
            self.create_service(Trigger, "/usx/sweep/stop", self._srv_stop)
            self.sweeps = SweepActionServer(
                self,
                SweepProtocol(p.max_sweep_duration_s, p.max_frame_spacing_mm),
                start=self.start,
                stop=self.stop,
                discard=self._discard_sweep,
                not_ready=self.not_ready,
                busy=self._busy,
                bands=self.level_bands,
                points_since=lambda chunk: self.sweep.points_since(chunk),
                on_coverage=self._publish_live,
                feedback_period_s=p.feedback_period_s,
                client_lost_s=p.client_lost_s,
                min_coverage=p.min_level_coverage,
                frame_id=p.base_frame,
            )
            self.create_subscription(XrayView, "/usx/xray", self._on_xray, RESULT_QOS)
        self.create_service(Trigger, "/usx/sweep/reset", self._srv_reset)
        self.create_timer(0.02, self._on_stop_tick)

    def on_deactivate(self, state):
        if self.sweeps is not None:  # a sweep half recorded while inactive would be wrong
            self.sweeps.abort("us_compounding deactivated")
        return super().on_deactivate(state)

    def release(self) -> None:
        """Abort a goal's sweep and take the action server down (cleanup, shutdown)."""
        if getattr(self, "sweeps", None) is not None:
            self.sweeps.destroy()
            self.sweeps = None

    def _new_sweep(self, poses: PoseBuffer | None) -> BoneSweep:
        """The next sweep; ``poses``: the pose buffer carried over (None: a fresh one)."""
        p = self.params
        if poses is None:
            poses = PoseBuffer(
                tolerance_s=p.pose_tolerance_s,
                temporal_offset_s=self._calibration.temporal_offset_ms * 1e-3,
            )
        return BoneSweep(
            self.grid,
            self._calibration,
            (p.rows, p.cols),
            seg_params=BoneSegParams(pixel_mm=self._calibration.image.spacing_mm),
            mode=CompoundingMode(p.mode),
            memory_budget_bytes=p.memory_budget_mb * 1024 * 1024,
            pose_buffer=poses,
            max_pending=p.max_pending,
            min_confidence=p.min_confidence,
            contact=ContactParams(
                depth_mm_per_px=self._calibration.image.spacing_mm[1],
                min_contact_fraction=p.min_contact_fraction,
            ),
            pixel_stride=p.volume_pixel_stride or None,
            thin_voxel_mm=p.bone_points_voxel_mm,
        )

    # --- read-only state for tests and monitoring ---------------------------------------
    @property
    def sweep(self) -> BoneSweep:
        """The current (or last closed) sweep."""
        return self.session.sweep

    @property
    def active(self) -> bool:
        return self.session.active

    @property
    def sweeps_completed(self) -> int:
        return self.session.sweeps_completed

    # --- sweep control ---------------------------------------------------------------
    def start(self) -> str:
        if self.session.closing is not None:  # close the previous sweep first
            self._on_stop_tick(force=True)
        # a RecordSweep goal's sweep is named by its goal; the session names the others
        return self.session.start("" if self.sweeps is None else self.sweeps.sweep_id)

    def stop(self) -> str:
        """End the sweep; it closes once the frames acquired before the stop are settled
        (``SweepSession.stop``)."""
        msg = self.session.stop(time.monotonic(), self.get_clock().now().nanoseconds)
        if self.sweeps is not None:
            self.sweeps.stopped()
        return msg

    def _busy(self) -> str | None:
        """Why no goal may start: a sweep the start service began is running."""
        if self.session.active or self.session.closing is not None:
            return "a sweep started by /usx/sweep/start is still recording or closing"
        return None

    def _on_stop_tick(self, force: bool = False) -> None:
        if self.sweeps is not None:
            self.sweeps.poll(time.monotonic())
        if self.session.closing is None:
            return
        if not force and not self.session.close_due(time.monotonic()):
            return
        since = self.session.closing.since
        t_close = time.monotonic()
        self._account(self.session.close())
        report = self._publish_results()
        t_out = time.monotonic()
        if self.sweeps is not None:
            self.sweeps.closed(report, len(self._last_points_mm))
        self.pub_status.publish(String(data=json.dumps(self.status())))
        # where a sweep's end waits: settling after the stop, then the results themselves
        self.get_logger().info(
            f"sweep closed: {self.sweep.frames_placed} frames placed, "
            f"{len(self._last_points_mm)} bone points, drops {dict(self.health.counts)}; "
            f"bone points out {t_out - since:.2f} s after the stop (settling "
            f"{t_close - since:.2f} s, results {t_out - t_close:.2f} s: "
            + ", ".join(f"{k} {v:.3f}" for k, v in self._results_took.items())
            + ")"
        )
        trim_heap()  # the closed sweep's volume is garbage now

    def not_ready(self) -> str | None:
        """Why a sweep started now would lose its first frames (None: it would not).

        The pose stream must be live end to end (tracker matched to the robot and to this
        node: a pose arrived within ``start_pose_max_age_s``) and the image stream matched.
        """
        max_age_s = self.params.start_pose_max_age_s
        if max_age_s == 0.0:
            return None
        age_s = self.session.pose_age_s(time.monotonic())
        if age_s > max_age_s:
            last = "none yet" if math.isinf(age_s) else f"the last {age_s:.1f} s ago"
            return (
                f"no probe pose on {self._pose_sub.topic_name} within {max_age_s:g} s "
                f"({last}): is the probe tracker running?"
            )
        if self._image_sub.get_publisher_count() == 0:
            return f"no publisher on {self._image_sub.topic_name} has matched this node yet"
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
        if self.sweeps is not None:
            self.sweeps.abort("discarded by /usx/sweep/reset")
        resp.success, resp.message = True, self._discard_sweep()
        return resp

    def _on_active(self, msg: Bool) -> None:
        if msg.data and not self.active:
            self.start()
        elif not msg.data and self.active:
            self.stop()

    # --- streams ----------------------------------------------------------------------
    def _on_xray(self, msg: XrayView) -> None:
        """The lateral X-ray's level bands, for the sweep's per-level coverage."""
        if msg.header.frame_id not in ("", self.params.base_frame):
            self.health.reject("wrong_frame", f"X-ray geometry in {msg.header.frame_id!r}")
            return
        try:
            xray = xray_view_from_msg(msg)
            # registered depth: the bands now; otherwise from each sweep's first bone points
            bands = bands_from_xray(xray) if xray.plane_point_mm is not None else None
        except ValueError as exc:
            self.health.reject("invalid_xray", str(exc))
            return
        self._xray, self._xray_bands = xray, bands

    def level_bands(self) -> LevelBands | None:
        """The latest X-ray's level bands (None before an X-ray, or before the current
        sweep has the bone points an X-ray without registered depth needs)."""
        if self._xray is None or self._xray_bands is not None:
            return self._xray_bands
        points = self.sweep.bone_points_mm()
        if len(points) < MIN_PLANE_POINTS:
            return None
        try:
            return bands_from_xray(self._xray, points)
        except ValueError as exc:
            self.get_logger().warning(
                f"no level bands for the coverage: {exc}", throttle_duration_sec=10.0
            )
            return None

    def _on_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self.params.base_frame):
            self.health.reject("wrong_frame", f"pose in {msg.header.frame_id!r}")
            return
        try:
            T = pose_to_transform_mm(msg.pose)
        except ValueError as exc:
            self.health.reject("invalid_pose", str(exc))
            return
        stamp = stamp_to_ns(msg.header.stamp)
        reason, released = self.session.add_pose(stamp, T, time.monotonic)
        if reason is not None:
            self.health.reject(reason, f"pose at {stamp} ns rejected")
        self._account(released)

    def _on_image(self, msg: Image) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        if not self.session.takes_frame(stamp):
            return
        try:
            image = image_to_array(msg, ("mono8", "8UC1"))
        except ValueError as exc:
            self.session.reject_frame()
            self.health.reject("invalid_image", str(exc))
            return
        try:
            reports = self.session.add_frame(stamp, image, self._clock_ns)
        except StampRejected as exc:
            self.health.reject(exc.reason, str(exc))
            return
        except ValueError as exc:
            self.health.reject("invalid_image", str(exc))
            return
        self._account(reports)

    def _clock_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _account(self, reports) -> None:
        """Count settled frames: placed ones as accepted, the others by drop reason."""
        if self.sweeps is not None:
            self.sweeps.frames(reports)
        for r in reports:
            if r.placed:
                self.health.accept()
            else:
                self.health.reject(r.reason or "dropped", f"frame at {r.stamp_ns} ns")

    def _discard_sweep(self) -> str:
        """Discard the sweep unpublished; if its live points went out, say it is void."""
        message = self.session.reset()
        void = self._live.discarded()
        if void is not None:
            header = Header(frame_id=self.params.base_frame, stamp=self.get_clock().now().to_msg())
            self.pub_live.publish(
                SweepPoints(
                    header=header,
                    sweep_id=void[0],
                    sequence=void[1],
                    discarded=True,
                    cloud=points_mm_to_cloud(np.zeros((0, 3)), header),
                )
            )
        return message

    # --- results ----------------------------------------------------------------------
    def _publish_live(self, sweep_id: str, coverage: dict, done: dict, counts: dict) -> None:
        """The sweep's bone points so far, once a level is covered (live completion)."""
        seq = self._live.due(sweep_id, done, time.monotonic())
        if seq is None:
            return
        points = self._compounded_points()
        header = Header(frame_id=self.params.base_frame, stamp=self.get_clock().now().to_msg())
        self.pub_live.publish(
            SweepPoints(
                header=header,
                sweep_id=sweep_id,
                sequence=seq,
                levels=[f"L{lv}" for lv in coverage],
                coverage=[float(v) for v in coverage.values()],
                covered=[bool(done[lv]) for lv in coverage],
                points=[int(counts.get(lv, 0)) for lv in coverage],
                cloud=points_mm_to_cloud(points, header),
            )
        )

    def _compounded_points(self, every_point_mm: np.ndarray | None = None) -> np.ndarray:
        """The sweep's bone points as compounded: thinned as the frames came when
        ``bone_points_voxel_mm`` > 0, else every point (``every_point_mm`` when the caller
        holds them already)."""
        if self.params.bone_points_voxel_mm > 0:
            return self.sweep.thinned_bone_points_mm()
        return self.sweep.bone_points_mm() if every_point_mm is None else every_point_mm

    def _publish_closing(self) -> None:
        """All of the stopped sweep's points, as its final cloud will be unless the
        breathing fit moves them (``SweepPoints.closing``)."""
        sweep_id = self.session.sweep_id
        points = self._compounded_points(self._last_points_mm)
        header = Header(frame_id=self.params.base_frame, stamp=self.get_clock().now().to_msg())
        self.pub_live.publish(
            SweepPoints(
                header=header,
                sweep_id=sweep_id,
                sequence=self._live.closing(sweep_id),
                closing=True,
                cloud=points_mm_to_cloud(points, header),
            )
        )

    def _publish_results(self) -> SweepReport:
        header = Header(frame_id=self.params.base_frame)
        header.stamp = self.get_clock().now().to_msg()
        took, t0 = {}, time.perf_counter()  # the results' stages, s (the close's log line)
        self._last_points_mm = self.sweep.bone_points_mm()
        self._live.closed()  # its final points follow: nothing live to withdraw
        took["points"], t0 = time.perf_counter() - t0, time.perf_counter()
        self._breathing = None
        beam = self.sweep.mean_beam_direction()
        if self.params.breathing_compensation and beam is not None:
            self._publish_closing()  # the X-ray is placed on them while the fit runs
            took["closing points"], t0 = time.perf_counter() - t0, time.perf_counter()
            stamps = self.sweep.bone_point_stamps_ns()
            try:
                self._breathing = estimate_breathing(self._last_points_mm, stamps, beam)
            except ValueError as exc:  # the sweep's points stay as compounded
                self.get_logger().warning(f"breathing fit failed: {exc}")
        moved = self._breathing is not None and self._breathing.applied
        if moved:
            self._last_points_mm = self._breathing.correct(self._last_points_mm, stamps)
        took["breathing"], t0 = time.perf_counter() - t0, time.perf_counter()
        voxel_mm = self.params.bone_points_voxel_mm
        if voxel_mm > 0 and moved:  # the corrected points fall in other voxels
            self._last_points_mm = thin_points(self._last_points_mm, voxel_mm)
        elif voxel_mm > 0:  # as thinned while the frames were placed: the same points
            self._last_points_mm = self.sweep.thinned_bone_points_mm()
        took["thinning"], t0 = time.perf_counter() - t0, time.perf_counter()
        # the report first: completion reads it when these bone points arrive
        report = sweep_report_msg(self.session.frame_loss(), header, self.session.stopped_at_ns)
        report.sweep_id = self.session.sweep_id
        self.pub_report.publish(report)
        cloud = points_mm_to_cloud(self._last_points_mm, header)
        self.pub_sweep_points.publish(
            SweepCloud(header=header, sweep_id=self.session.sweep_id, cloud=cloud, final=True)
        )
        self.pub_points.publish(cloud)
        took["publish"], t0 = time.perf_counter() - t0, time.perf_counter()
        self.pub_coverage.publish(points_mm_to_cloud(self.sweep.coverage_points_mm(), header))
        took["coverage cloud"] = time.perf_counter() - t0
        self._results_took = took
        out = self.params.save_volume_dir
        if out:
            res = self.sweep.result()
            t0 = time.perf_counter()
            save_compounding_nifti(out, res)
            self.get_logger().info(
                f"volume written to {Path(out)} in {time.perf_counter() - t0:.1f} s"
            )
        return report

    def _diagnose(self) -> tuple[bytes, str] | None:
        """WARN while the last closed sweep lost more than 1 % of its frames."""
        if self.sweeps_completed == 0:
            return None
        loss = self.session.frame_loss()
        if loss.fraction > 0.01:
            return WARN, f"the last sweep lost {loss.lost} of {loss.expected} frames"
        return None

    def status(self) -> dict:
        """Counters of the last closed sweep (and totals of rejected input)."""
        s = self.session
        return {
            "frames_placed": self.sweep.frames_placed,
            "frames_digest": self.sweep.placed_digest,
            "frames_after_stop": s.frames_after_stop,
            "frames_outside_sweeps": s.frames_outside_sweeps,
            "frames_dropped": int(sum(self.sweep.dropped.values())),
            "drops_by_reason": dict(self.sweep.dropped),
            "partial_contact_frames": self.sweep.partial_contact,
            "frames_rejected": s.frames_rejected,
            "frame_loss": s.frame_loss().as_dict(),
            "breathing": None if self._breathing is None else self._breathing.as_dict(),
            "rejected_input": dict(self.health.counts),
            "bone_points": len(self._last_points_mm),
            "sweeps_completed": s.sweeps_completed,
        }

    @property
    def bone_points_mm(self) -> np.ndarray:
        """The last completed sweep's bone points (base frame, mm)."""
        return self._last_points_mm


def main(args: list[str] | None = None) -> None:
    run_node(UsCompounding, args)


if __name__ == "__main__":
    main()
