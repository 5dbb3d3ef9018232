"""completion: US bone points + lateral X-ray -> the completed spine, in the base frame.

Inputs (reliable, transient-local): ``/usx/sweep/bone_points`` (usx_msgs/SweepCloud from
us_compounding, one per finished sweep) and ``/usx/sweep/xray_points`` (SweepCloud with a
level field, from xray_ingest, named by the sweep whose bone points placed it): a sweep's
clouds and its report are joined on the sweep id. On the
``/usx/complete_spine`` service (usx_msgs/CompleteSpine), or automatically when a sweep's
bone points and its X-ray points are in, it runs
``usx_model.completion.spine.SpineCompleter`` on the configured device (CUDA when present
and allowed, else CPU) and publishes

- ``/usx/completed_spine``: PointCloud2 with x, y, z (m), level (uint8),
  uncertainty (m: the calibrated error scale sigma of ``usx_model.completion.error_scale``,
  the true surface within sigma of about 68 % of the points and 1.96 sigma of about 95 %;
  zero with ``n_samples`` 0), rgb (level colour), status (uint8, the
  ``VertebraCompletion`` status of its vertebra), frame = the robot base frame;
- ``/usx/spine_completion``: usx_msgs/SpineCompletion (per-level clouds, status and
  confidence from the quality gate, latency);
- ``/usx/level_labels``: visualization_msgs/MarkerArray with one text label per level
  (a vertebra the gate failed is labelled with its status, in grey),

all reliable + transient-local, so RViz or a late subscriber still gets them. Without an
X-ray (or with ``use_xray`` false) every level uses the US-only model and the status
says so.

A sweep's final completion waits for xray_ingest's answer to its bone points: one
``final`` SweepCloud of the same sweep id, its placed X-ray points or none (no X-ray, or
the placement failed: the US-only model then). With no publisher on
``/usx/sweep/xray_points`` (no xray_ingest in the graph) it completes at once, US-only;
``xray_answer_timeout_s`` only guards against a placer that died (it then uses the latest
X-ray points, if any, and says so).

While a RecordSweep goal's sweep records, ``/usx/sweep/live_points`` (usx_msgs/SweepPoints
from us_compounding: the bone points so far and each level's coverage) drive a live
completion (``usx_model.completion.live``): each level is completed once its coverage
criterion is met, again while it grows (``live_min_period_s``, ``live_min_gain``,
``live_min_growth``), with
the latest placed X-ray points, and the spine so far is published on the same topics with
``final`` false; the sweep's final completion (``final`` true) follows its
``/usx/sweep/bone_points`` as before and ends the live one. A discarded sweep (cancelled, its
client lost, reset: ``SweepPoints.discarded``) has its live spine withdrawn: the last final
completion is published again, or an empty spine.

A sweep that lost more than ``max_lost_fraction`` of its frames (``/usx/sweep_report``
with the same sweep id) publishes no level as usable: ``ok`` and
``us_only_fallback`` become ``insufficient_us`` with the reason.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

import numpy as np
import torch
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header, String
from visualization_msgs.msg import Marker, MarkerArray

from usx_model.completion.live import LivePolicy, LiveSpine
from usx_model.completion.spine import (
    USABLE_STATUSES,
    PatientPrior,
    PreparedPoints,
    SpineCompleter,
    SpineCompletionResult,
    cap_for_frame_loss,
)
from usx_model.network.us_consistency import US_SNAP_MM
from usx_model.network.weights import load_weights, sha256_file
from usx_model.weights import shipped_weights
from usx_msgs.msg import (
    SpineCompletion,
    SweepCloud,
    SweepPoints,
    SweepReport,
    VertebraCompletion,
)
from usx_msgs.srv import CompleteSpine
from usx_ros.completion_status import STATUS_CODE
from usx_ros.conversions import (
    cloud_to_array,
    mm_to_m,
    point_mm_to_msg,
    points_mm_to_cloud,
    seconds_to_duration,
    stamp_to_ns,
    sweep_points_coverage,
    sweep_report_fraction,
    xyz_from_cloud_mm,
)
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT, WARN, NodeDiagnostics
from usx_ros.health import InputHealth, bone_points_or_reject, too_many_points
from usx_ros.interfaces import Endpoint
from usx_ros.memory import trim_heap
from usx_ros.nodes.common import run_node
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.qos import LIVE_QOS, RESULT_QOS

#: RViz colours of L1..L5 (0xRRGGBB).
LEVEL_RGB = (0xE6194B, 0x3CB44B, 0xFFE119, 0x4363D8, 0xF58231)


@dataclass(frozen=True)
class CompletionParams:
    """Parameters of completion."""

    xray_answer_timeout_s: float = param(
        10.0,
        "the longest a sweep's final completion waits for xray_ingest's answer (its X-ray "
        "points, or none) while a node publishes /usx/sweep/xray_points: a guard against a "
        "placer that died, not a tuned wait (the answer ends the wait), s",
        min_value=0.0,
        max_value=60.0,
    )
    base_frame: str = param("lbr_link_0", "robot base frame", read_only=True)
    device: str = param("auto", "network device", choices=("auto", "cpu", "cuda"), read_only=True)
    threads: int = param(
        1,
        "torch CPU threads (0 = torch default); 1: the graph's other nodes share the cores",
        min_value=0,
        max_value=64,
        read_only=True,
    )
    weights_full: str = param("", "full model weights ('' = shipped)", read_only=True)
    weights_us_only: str = param("", "US-only model weights ('' = shipped)", read_only=True)
    n_samples: int = param(
        1,
        "posterior samples behind the per-point uncertainty (latency grows with 1 + n)",
        min_value=0,
        max_value=32,
        read_only=True,
    )
    us_snap_mm: float = param(
        US_SNAP_MM,
        "move predicted points within this of their level's own US bone points (of the "
        "split) onto the observed surface, after the quality gate (network.us_consistency; "
        "0 = off), mm",
        min_value=0.0,
        max_value=20.0,
        read_only=True,
    )
    auto_complete: bool = param(True, "complete when a sweep's bone points arrive")
    live_completion: bool = param(
        True, "complete covered levels while a sweep records (/usx/sweep/live_points)"
    )
    live_min_period_s: float = param(
        1.0,
        "least time between two live completions of the same level, s",
        min_value=0.0,
        max_value=60.0,
    )
    live_min_gain: float = param(
        0.1,
        "least growth of a live-completed level's coverage (fraction) before it is completed again",
        min_value=0.0,
        max_value=1.0,
    )
    live_min_growth: float = param(
        0.3,
        "least relative growth of a level's bone points (SweepPoints.points; without them "
        "the whole sweep's) since its last live completion before it is completed again "
        "(later passes add points, not coverage)",
        min_value=0.01,
        max_value=100.0,
    )
    live_max_levels: int = param(
        2,
        "most levels one live completion completes (the longest-waiting first): a live step "
        "in progress delays a sweep's final completion by at most that long",
        min_value=1,
        max_value=5,
    )
    max_points: int = param(
        500_000,
        "largest bone or X-ray point cloud accepted; a larger one is rejected (counted, "
        "reason too_many_points) before it is decoded",
        min_value=1_000,
        max_value=50_000_000,
    )
    max_lost_fraction: float = param(
        0.1,
        "largest fraction of a sweep's frames that may be lost (dropped, refused or never "
        "arrived: /usx/sweep_report) before no level of it is published as usable "
        "(status insufficient_us)",
        min_value=0.0,
        max_value=1.0,
    )
    patient_cranial: tuple[float, ...] = param(
        (0.0, 1.0, 0.0), "direction to the head, base frame", length=3
    )
    patient_posterior: tuple[float, ...] = param(
        (0.0, 0.0, 1.0),
        "direction from the spine to the probe side (posterior), base frame",
        length=3,
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = CompletionParams

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint("subscribes", "/usx/sweep/bone_points", "usx_msgs/msg/SweepCloud", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/sweep/xray_points", "usx_msgs/msg/SweepCloud", "RESULT_QOS"),
    Endpoint(
        "subscribes", "/usx/sweep/live_points", "usx_msgs/msg/SweepPoints", "LIVE_QOS", "live"
    ),
    Endpoint(
        "subscribes", "/usx/sweep_report", "usx_msgs/msg/SweepReport", "RESULT_QOS", "frame loss"
    ),
    Endpoint("publishes", "/usx/completed_spine", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("publishes", "/usx/spine_completion", "usx_msgs/msg/SpineCompletion", "RESULT_QOS"),
    Endpoint("publishes", "/usx/level_labels", "visualization_msgs/msg/MarkerArray", "RESULT_QOS"),
    Endpoint("publishes", "~/status", "std_msgs/msg/String", "RESULT_QOS", "JSON per completion"),
    Endpoint("serves", "/usx/complete_spine", "usx_msgs/srv/CompleteSpine"),
)


def _rgb_field(levels: np.ndarray) -> np.ndarray:
    """PCL-style packed rgb: uint32 0x00RRGGBB reinterpreted as float32."""
    table = np.array((0x808080, *LEVEL_RGB), dtype=np.uint32)
    return table[np.clip(levels, 0, 5)].view(np.float32)


class CompletionNode(ManagedNode):
    """Runs the spine completion and publishes its results."""

    params: CompletionParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("completion", **kwargs)

    def configure(self) -> None:
        """Validate the parameters, load what the node needs, create its entities."""
        p = declare_params(self, CompletionParams)
        if p.device == "cuda" and not torch.cuda.is_available():
            raise ParameterError("parameter 'device': cuda requested but none is available")
        self.device = "cuda" if p.device != "cpu" and torch.cuda.is_available() else "cpu"
        if p.threads:
            torch.set_num_threads(p.threads)
        models, self.model_id = {}, []
        weights = {"full": p.weights_full, "us_only": p.weights_us_only}
        for variant in ("full", "us_only"):
            path = weights[variant] or str(shipped_weights(variant))
            try:
                models[variant] = load_weights(path, self.device)
            except (OSError, ValueError) as exc:
                raise ParameterError(f"parameter 'weights_{variant}': {exc}") from exc
            self.model_id.append(f"{variant}@{sha256_file(path)[:12]}")
        self.completer = SpineCompleter(
            models["full"], models["us_only"], self.device, p.n_samples, us_snap_mm=p.us_snap_mm
        )
        self.health = InputHealth(self.get_logger())
        self._lock = threading.Lock()
        # the latest bone and X-ray points and the sweeps they belong to (None: none yet)
        self._bone_mm: np.ndarray | None = None
        self._bone_sweep: str | None = None
        self._xray: dict[int, np.ndarray] | None = None
        self._xray_sweep: str | None = None  # None too for a live placement
        self._prepared: PreparedPoints | None = None  # of _bone_mm, while the X-ray is placed
        self._pending_t0: float | None = None
        # sweep id -> (lost fraction of its frames, its stop in ns), from its report
        self._reports: dict[str, tuple[float, int]] = {}
        self._live: LiveSpine | None = None
        self._finished_ids: list[str] = []  # sweeps completed for good: no live completion
        self.live_completions = 0
        self._last_final: tuple | None = None  # the last final (cloud, completion, labels)
        self.last_live_latency_s = float("nan")
        self.completions = 0
        self.last_result: SpineCompletionResult | None = None
        self.last_latency_s = float("nan")
        self.last_sweep_latency_s = float("nan")
        work = MutuallyExclusiveCallbackGroup()
        # Created first: when a sweep's report and its bone points wait together, the
        # executor serves the report first.
        self.create_subscription(
            SweepReport, "/usx/sweep_report", self._on_sweep_report, RESULT_QOS, callback_group=work
        )
        self.create_subscription(
            SweepCloud,
            "/usx/sweep/bone_points",
            self._on_bone_points,
            RESULT_QOS,
            callback_group=work,
        )
        xray_sub = self.create_subscription(
            SweepCloud,
            "/usx/sweep/xray_points",
            self._on_xray_points,
            RESULT_QOS,
            callback_group=work,
        )
        self._xray_points_topic = xray_sub.topic_name  # after remapping
        self.create_subscription(
            SweepPoints,
            "/usx/sweep/live_points",
            self._on_live_points,
            LIVE_QOS,
            callback_group=work,
        )
        self._wait_timer = self.create_timer(0.02, self._on_wait_tick, callback_group=work)
        self.create_service(
            CompleteSpine, "/usx/complete_spine", self._on_request, callback_group=work
        )
        self.pub_cloud = self.create_publisher(PointCloud2, "/usx/completed_spine", RESULT_QOS)
        self.pub_completion = self.create_publisher(
            SpineCompletion, "/usx/spine_completion", RESULT_QOS
        )
        self.pub_labels = self.create_publisher(MarkerArray, "/usx/level_labels", RESULT_QOS)
        # One JSON line per completion (latency, stage timings, frame) for monitors.
        self.pub_status = self.create_publisher(String, "~/status", RESULT_QOS)
        self.diagnostics = NodeDiagnostics(self, self.health, self._diag_values, self._diagnose)
        self.get_logger().info(f"models {self.model_id} on {self.device}")
        # The first forward pass of a process is several times slower (allocator, kernels):
        # pay it at start-up, not after the first sweep.
        self._warmup_timer = self.create_timer(0.1, self._warm_up, callback_group=work)

    def release(self) -> None:
        """Drop the networks (cleanup): configure loads them again."""
        self.completer = None
        self._bone_mm = self._xray = None
        trim_heap()

    def _warm_up(self) -> None:
        self._warmup_timer.cancel()
        t0 = time.perf_counter()
        self.completer.warm_up()
        self.heap_settled = True  # the warm-up's objects too (run_node freezes them)
        self.get_logger().info(f"network warmed up in {time.perf_counter() - t0:.2f} s")

    # --- health -------------------------------------------------------------------------
    def _diag_values(self) -> dict:
        levels = self.last_result.levels if self.last_result is not None else []
        return {
            "completions": self.completions,
            "live_completions": self.live_completions,
            "last_live_latency_s": self.last_live_latency_s,
            "last_latency_s": self.last_latency_s,
            "last_sweep_end_to_result_s": self.last_sweep_latency_s,
            "levels": {f"L{lc.level}": lc.status for lc in levels},
            "model_id": " ".join(self.model_id),
        }

    def _diagnose(self) -> tuple[bytes, str] | None:
        """WARN while a level of the last completion is not usable as published."""
        if self.last_result is None:
            return None
        bad = [
            f"L{lc.level} {lc.status}"
            for lc in self.last_result.levels
            if lc.status not in USABLE_STATUSES
        ]
        return (WARN, "last completion: " + ", ".join(bad)) if bad else None

    # --- inputs -------------------------------------------------------------------------
    def _has_xray_points(self) -> bool:
        """The latest sweep's X-ray points are in (placed on that sweep's final bone
        points; a live placement on its points so far is not them)."""
        return self._bone_sweep is not None and self._xray_sweep == self._bone_sweep

    def _on_xray_points(self, msg: SweepCloud) -> None:
        if msg.header.frame_id != self.params.base_frame:
            self.health.reject("wrong_frame", f"X-ray points in {msg.header.frame_id!r}")
            return
        if too_many_points(self.health, msg.cloud, "X-ray points", self.params.max_points):
            return
        none = msg.final and msg.cloud.width * msg.cloud.height == 0
        try:
            if not none:
                pts = xyz_from_cloud_mm(msg.cloud)
                level = cloud_to_array(msg.cloud, ("x", "y", "z", "level"))["level"].astype(int)
                if not len(pts) or not np.isin(level, (1, 2, 3, 4, 5)).all():
                    raise ValueError("expected points with levels 1..5")
        except ValueError as exc:
            self.health.reject("invalid_xray_points", str(exc))
            return
        self.health.accept()
        if none:  # xray_ingest's answer: no X-ray points for this sweep
            self._xray = None
            self.get_logger().info(f"no X-ray points for sweep {msg.sweep_id!r}: US-only model")
        else:
            self._xray = {int(lv): pts[level == lv] for lv in np.unique(level)}
        self._xray_sweep = msg.sweep_id if msg.final else None
        if self._pending_t0 is not None and self._has_xray_points():
            t0, self._pending_t0 = self._pending_t0, None
            self.run_completion((1, 2, 3, 4, 5), True, t0)

    def _on_sweep_report(self, msg: SweepReport) -> None:
        try:
            fraction = sweep_report_fraction(msg)
        except ValueError as exc:
            self.health.reject("invalid_sweep_report", str(exc))
            return
        self.health.accept()
        self._reports[msg.sweep_id] = (fraction, stamp_to_ns(msg.sweep_end))
        while len(self._reports) > 8:  # the sweeps that may still be completed
            del self._reports[next(iter(self._reports))]

    def _xray_placer_exists(self) -> bool:
        """Some node (xray_ingest) will answer a sweep's bone points with its X-ray points."""
        return self.count_publishers(self._xray_points_topic) > 0

    def _on_wait_tick(self) -> None:
        """Complete with what there is if the X-ray placer never answered (it died), or
        when it leaves the graph while a sweep waits."""
        if self._pending_t0 is None:
            return
        timeout_s = self.params.xray_answer_timeout_s
        waited_s = time.perf_counter() - self._pending_t0
        if waited_s < timeout_s and self._xray_placer_exists():
            return
        t0, self._pending_t0 = self._pending_t0, None
        what = "the latest X-ray points" if self._xray is not None else "the US-only model"
        self.get_logger().warning(
            f"no answer from the X-ray placer for sweep {self._bone_sweep!r} after "
            f"{waited_s:.1f} s: completing with {what}"
        )
        self.run_completion((1, 2, 3, 4, 5), True, t0)

    def _on_bone_points(self, msg: SweepCloud) -> None:
        t_received = time.perf_counter()
        p = self.params
        pts = bone_points_or_reject(
            self.health,
            msg.cloud,
            msg.header.frame_id,
            p.base_frame,
            "bone points",
            "invalid_cloud",
            p.max_points,
        )
        if pts is None:
            return
        self.health.accept()
        self._bone_mm, self._bone_sweep = pts, msg.sweep_id
        if not self.params.auto_complete:
            return
        if self._has_xray_points():  # its X-ray points (or none) came first
            self.run_completion((1, 2, 3, 4, 5), True, t_received)
        elif not self._xray_placer_exists():  # nobody will place any: what there is
            self.run_completion((1, 2, 3, 4, 5), True, t_received)
        else:
            self._pending_t0 = t_received
            # while xray_ingest places the X-ray on these points: what needs no X-ray
            with self._lock:
                try:
                    self._prepared = self.completer.prepare(pts, self._prior())
                except ValueError:
                    self._prepared = None  # complete() says why, with the X-ray

    def _on_request(self, req: CompleteSpine.Request, resp: CompleteSpine.Response):
        t0 = time.perf_counter()
        try:
            levels = tuple(int(name.strip().upper().removeprefix("L")) for name in req.levels)
            if any(lv not in (1, 2, 3, 4, 5) for lv in levels):
                raise ValueError
        except ValueError:
            resp.success, resp.message = False, f"levels must be L1..L5, got {list(req.levels)}"
            return resp
        if self._bone_mm is None:
            resp.success, resp.message = False, "no bone points yet: run a sweep first"
            return resp
        msg = self.run_completion(levels or (1, 2, 3, 4, 5), req.use_xray, t0)
        resp.success = msg is not None
        resp.message = "completed" if msg is not None else "completion failed: see the log"
        if msg is not None:
            resp.completion = msg
        return resp

    def _on_live_points(self, msg: SweepPoints) -> None:
        """Complete the levels a recording sweep has covered so far (``completion.live``)."""
        p = self.params
        if msg.sweep_id in self._finished_ids or msg.closing:
            return  # closing points: the final bone points follow (breathing fit)
        if msg.discarded:
            self._withdraw_live(msg.sweep_id)
            return
        if not (p.auto_complete and p.live_completion):
            return
        pts = bone_points_or_reject(
            self.health,
            msg.cloud,
            msg.header.frame_id,
            p.base_frame,
            "live points",
            "invalid_live_points",
            p.max_points,
        )
        if pts is None:
            return
        try:
            coverage, covered, counts = sweep_points_coverage(msg)
        except ValueError as exc:
            self.health.reject("invalid_live_points", str(exc))
            return
        self.health.accept()
        if self._live is None or self._live.sweep_id != msg.sweep_id:
            policy = LivePolicy(
                p.live_min_period_s, p.live_min_gain, p.live_min_growth, p.live_max_levels
            )
            self._live = LiveSpine(msg.sweep_id, policy)
        # each level's points when the message counts them, else the whole cloud's
        counts = counts or dict.fromkeys(coverage, len(pts))
        due = self._live.due(coverage, covered, time.monotonic(), counts)
        if not due:
            return
        t0 = time.perf_counter()
        prior = self._prior()
        with self._lock:
            try:
                result = self.completer.complete(pts, prior, self._xray, due, True)
            except ValueError as exc:
                self.health.reject("completion_failed", f"live: {exc}")
                return
        spine = self._live.update(result, coverage, time.monotonic(), counts)
        self.last_live_latency_s = time.perf_counter() - t0
        header = Header(frame_id=p.base_frame, stamp=self.get_clock().now().to_msg())
        self._publish(spine, header, msg.sweep_id, final=False)
        self.live_completions += 1
        self.get_logger().info(
            f"sweep {msg.sweep_id!r} (live): L{', L'.join(map(str, due))} completed in "
            f"{self.last_live_latency_s:.2f} s; the spine so far: "
            f"L{', L'.join(map(str, self._live.completed_levels))}"
        )

    def _prior(self) -> PatientPrior:
        return PatientPrior(
            np.array(self.params.patient_cranial), np.array(self.params.patient_posterior)
        )

    def _withdraw_live(self, sweep_id: str) -> None:
        """A discarded sweep: its live spine must not stand. The last final completion is
        published again (or an empty spine when there is none)."""
        self._finished_ids = [*self._finished_ids[-7:], sweep_id]
        if self._live is None or self._live.sweep_id != sweep_id:
            return
        shown = bool(self._live.completed_levels)
        self._live.close()
        if not shown:
            return
        if self._last_final is not None:
            cloud, completion, labels = self._last_final
        else:
            header = Header(frame_id=self.params.base_frame, stamp=self.get_clock().now().to_msg())
            cloud = points_mm_to_cloud(np.zeros((0, 3)), header)
            completion = SpineCompletion(header=header, sweep_id=sweep_id, final=True)
            labels = MarkerArray(
                markers=[Marker(header=header, ns="usx_levels", action=Marker.DELETEALL)]
            )
        self.pub_cloud.publish(cloud)
        self.pub_completion.publish(completion)
        self.pub_labels.publish(labels)
        self.get_logger().info(f"sweep {sweep_id!r} discarded: its live spine withdrawn")

    # --- work ---------------------------------------------------------------------------
    def run_completion(self, levels, use_xray: bool, t0: float) -> SpineCompletion | None:
        """Complete ``levels`` from the latest inputs and publish; None on failure."""
        # from the trigger (bone points or request) to this work's start: the X-ray
        # placement, and whatever held this node's executor or the transport up
        waited_s = time.perf_counter() - t0
        prior = self._prior()
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.source is not self._bone_mm:
            prepared = None  # made for earlier bone points
        with self._lock:
            try:
                result = self.completer.complete(
                    self._bone_mm, prior, self._xray, tuple(levels), use_xray, prepared
                )
            except ValueError as exc:
                self.health.reject("completion_failed", str(exc))
                return None
        lost, sweep_end_ns = self._reports.get(self._bone_sweep or "", (None, 0))
        if lost is not None:
            capped = cap_for_frame_loss(result, lost, self.params.max_lost_fraction)
            if capped:
                self.get_logger().warning(
                    f"the sweep lost {100 * lost:.1f} % of its frames: levels {capped} "
                    "published as insufficient_us"
                )
        now = self.get_clock().now()
        header = Header(frame_id=self.params.base_frame, stamp=now.to_msg())
        self.last_latency_s = time.perf_counter() - t0
        # from the sweep's stop when its report says when, whatever held the inputs up
        sweep_id = self._bone_sweep or ""
        if sweep_id:  # the final completion of this sweep: no live one after it
            self._finished_ids = [*self._finished_ids[-7:], sweep_id]
            if self._live is not None and self._live.sweep_id == sweep_id:
                self._live.close()
        self.last_sweep_latency_s = (
            (now.nanoseconds - sweep_end_ns) * 1e-9 if sweep_end_ns > 0 else float("nan")
        )
        msg = self._publish(result, header, sweep_id, final=True)
        self.last_result = result
        self.completions += 1
        status = {
            "latency_s": self.last_latency_s,
            "inputs_wait_s": waited_s,
            "sweep_end_to_result_s": self.last_sweep_latency_s,
            "stages_s": result.timings_s,
            "R_base_lps": result.R_base_lps.tolist(),
            "levels": {f"L{lc.level}": lc.status for lc in result.levels},
            "confidence": {f"L{lc.level}": round(lc.confidence, 3) for lc in result.levels},
            "device": self.device,
            "sweep_lost_fraction": lost,
            "rejected_input": dict(self.health.counts),
        }
        self.pub_status.publish(String(data=json.dumps(status)))
        timing = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in result.timings_s.items())
        self.get_logger().info(
            f"completed {len(result.levels)} levels in {self.last_latency_s:.2f} s (waiting for "
            f"inputs {waited_s * 1e3:.0f} ms, {timing})"
        )
        trim_heap()  # after the result is out: the sweep's arrays are garbage now
        return msg

    def _publish(
        self, result: SpineCompletionResult, header: Header, sweep_id: str, final: bool
    ) -> SpineCompletion:
        out = SpineCompletion(
            header=header,
            model_id=" ".join(self.model_id),
            device=self.device,
            sweep_id=sweep_id,
            final=final,
        )
        if final:
            sweep_s = self.last_sweep_latency_s
            latency = sweep_s if np.isfinite(sweep_s) else self.last_latency_s
        else:  # a live completion: its own time, from the live points' arrival
            latency = self.last_live_latency_s
        out.latency = seconds_to_duration(latency)
        clouds, levels, statuses, unc = [], [], [], []
        for lc in result.levels:
            lv = np.full(len(lc.points_mm), lc.level, dtype=np.uint8)
            st = np.full(len(lc.points_mm), STATUS_CODE[lc.status], dtype=np.uint8)
            extra = {
                "uncertainty": mm_to_m(lc.uncertainty_mm).astype(np.float32),
                "level": lv,
                "status": st,
            }
            out.vertebrae.append(
                VertebraCompletion(
                    header=header,
                    level=f"L{lc.level}",
                    cloud=points_mm_to_cloud(lc.points_mm, header, extra),
                    used_ultrasound=lc.n_us > 0,
                    used_xray=lc.used_xray,
                    num_us_points=lc.n_us,
                    num_xray_points=lc.n_xray,
                    status=STATUS_CODE[lc.status],
                    status_message=lc.message,
                    confidence=float(lc.confidence),
                )
            )
            clouds.append(lc.points_mm)
            levels.append(lv)
            statuses.append(st)
            unc.append(lc.uncertainty_mm)
        pts = np.concatenate(clouds) if clouds else np.zeros((0, 3))
        lv_all = np.concatenate(levels) if levels else np.zeros(0, np.uint8)
        extra = {
            "level": lv_all,
            "uncertainty": mm_to_m(np.concatenate(unc) if unc else np.zeros(0)).astype(np.float32),
            "rgb": _rgb_field(lv_all),
            "status": np.concatenate(statuses) if statuses else np.zeros(0, np.uint8),
        }
        published = (points_mm_to_cloud(pts, header, extra), out, self._labels(result, header))
        self.pub_cloud.publish(published[0])
        self.pub_completion.publish(published[1])
        self.pub_labels.publish(published[2])
        if final:
            self._last_final = published
        return out

    def _labels(self, result: SpineCompletionResult, header: Header) -> MarkerArray:
        markers = MarkerArray()
        markers.markers.append(Marker(header=header, ns="usx_levels", action=Marker.DELETEALL))
        for lc in result.levels:
            if not len(lc.points_mm):
                continue
            # Beside the vertebra, on the patient's left, so the label does not hide it.
            at = lc.points_mm.mean(axis=0) + 60.0 * result.R_base_lps[0]
            m = Marker(header=header, ns="usx_levels", id=lc.level, type=Marker.TEXT_VIEW_FACING)
            m.action = Marker.ADD
            m.pose.position = point_mm_to_msg(at)
            m.pose.orientation.w = 1.0
            m.scale.z = 0.02
            rgb = LEVEL_RGB[lc.level - 1]
            m.color.r, m.color.g, m.color.b = ((rgb >> s & 0xFF) / 255.0 for s in (16, 8, 0))
            m.color.a = 1.0
            m.text = f"L{lc.level}" + ("" if lc.used_xray else " (US only)")
            if lc.status not in ("ok", "us_only_fallback"):
                # A vertebra the gate failed: its name says why, in grey.
                m.text += f" {lc.status.upper()}"
                m.color.r = m.color.g = m.color.b = 0.6
            markers.markers.append(m)
        return markers


def main(args: list[str] | None = None) -> None:
    run_node(CompletionNode, args, threads=2)


if __name__ == "__main__":
    main()
