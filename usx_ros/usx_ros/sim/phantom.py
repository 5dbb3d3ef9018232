"""phantom: a digital patient, robot, US machine and C-arm in one node (no hardware).

Plans a robotic sweep over a phantom spine (``usx_model.sim.robot_sweep``), then
streams what the real devices would: ``/lbr/joint_states`` (JointState, the lbr driver's
joint names) and ``/us/image`` (mono8 B-mode frames from ``BModeSimulator``, stamped with
their acquisition time: the probe pose at that stamp is what the frame shows). At the
start it publishes once, transient-local, the lateral X-ray (``/usx/xray``) and the ground
truth (``/usx/phantom/ground_truth``: dense surface samples of every vertebra, base frame).
Each pass is framed by ``/usx/sweep/start`` and ``/usx/sweep/stop`` (std_srvs/Trigger) and
``/usx/phantom/sweep_active``. With ``loop`` the sweep runs back and forth. Before and
between passes the standing arm's joint state goes out at the joint rate, as from a robot
driver, and a pass begins only once the start service accepts it (it refuses while the
pose stream has not reached it; the phantom asks again every ``start_retry_s``).

Planning, meshing and the X-ray take seconds, so they run in a worker thread; frames are
rendered a little ahead of time in another; a timer at the joint rate publishes whatever is
due, so the constructor never blocks and publishing never waits on rendering. A frame is
published once the joint sample at or after its stamp is out, so a receiver always holds
the two robot states around it.
"""

from __future__ import annotations

import json
import os
import threading

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger

from usx_model.base.transforms import apply_transform, transform_from_xyz_rpy
from usx_model.base.xray_geometry import transform_geometry
from usx_model.sim.bmode import BModeSimulator
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.phantom.verse import load_verse_spine
from usx_model.sim.probe import ProbeKind, ProbeModel
from usx_model.sim.robot_sweep import (
    DEFAULT_TABLE_RPY_DEG,
    DEFAULT_TABLE_XYZ_MM,
    SERPENTINE_OFFSETS_MM,
    RobotSweep,
    plan_robot_sweep,
)
from usx_model.sim.scene import sample_surface
from usx_model.sim.xray import body_midplane_point_mm, lateral_geometry, render_lateral_xray
from usx_model.tracking.iiwa import JOINT_NAMES
from usx_msgs.msg import XrayView
from usx_ros.conversions import (
    array_to_image,
    ns_to_stamp,
    points_mm_to_cloud,
    xray_view_to_msg,
)
from usx_ros.nodes.common import run_node
from usx_ros.params import ParameterError, ParamSpec, declare_params
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS


def _xyz(name: str, default, description: str, bound: float) -> ParamSpec:
    return ParamSpec(
        name,
        list(default),
        description,
        list_of=float,
        length=3,
        min_value=-bound,
        max_value=bound,
        read_only=True,
    )


def _ro(name: str, default, description: str, lo=None, hi=None, **kw) -> ParamSpec:
    """A read-only parameter: the sweep is planned once, at start-up."""
    return ParamSpec(name, default, description, lo, hi, read_only=True, **kw)


PARAMS = (
    _ro("spine_seed", 0, "seed of the generated phantom spine", 0, 2**31 - 1),
    _ro("verse_mask", "", "VerSe label volume; with verse_centroids replaces the phantom"),
    _ro("verse_centroids", "", "VerSe centroid JSON of verse_mask"),
    _xyz("table_xyz_mm", DEFAULT_TABLE_XYZ_MM, "T_base_table translation, mm", 3000.0),
    _xyz("table_rpy_deg", DEFAULT_TABLE_RPY_DEG, "T_base_table rotation, URDF rpy, deg", 360.0),
    _xyz("hand_eye_xyz_mm", (0.0, 0.0, 150.0), "T_ee_probe translation, mm", 1000.0),
    _xyz("hand_eye_rpy_deg", (0.0, 0.0, 0.0), "T_ee_probe rotation, URDF rpy, deg", 360.0),
    _ro("base_frame", "lbr_link_0", "robot base frame (X-ray, ground truth)"),
    _ro("image_frame", "us_image", "frame_id of the US images"),
    _ro("robot_name", "lbr", "prefix of the joint names (lbr_A1..lbr_A7)"),
    _ro("joint_states_topic", "/lbr/joint_states", "JointState output"),
    _ro("image_topic", "/us/image", "B-mode Image output"),
    _ro("xray_topic", "/usx/xray", "XrayView output (transient local)"),
    _ro("ground_truth_topic", "/usx/phantom/ground_truth", "PointCloud2 output"),
    _ro("sweep_active_topic", "/usx/phantom/sweep_active", "Bool output"),
    _ro("start_service", "/usx/sweep/start", "Trigger called before a pass"),
    _ro("stop_service", "/usx/sweep/stop", "Trigger called after a pass"),
    _ro("joint_rate_hz", 100.0, "joint-state rate, Hz", 1.0, 1000.0),
    _ro("frame_rate_hz", 30.0, "US frame rate, Hz", 1.0, 120.0),
    _ro("sweep_speed_mm_s", 10.0, "probe speed along the spine, mm/s", 0.5, 500.0),
    _ro("n_frames", 0, "frames per sweep (>= 2); 0 = set by sweep_speed_mm_s", 0, 100000),
    ParamSpec(
        "lateral_offsets_mm",
        list(SERPENTINE_OFFSETS_MM),
        "one cranio-caudal pass per lateral probe offset, mm (a serpentine sweep)",
        list_of=float,
        read_only=True,
    ),
    _ro("standoff_mm", 20.0, "tissue between probe face and spinous tips, mm", 1.0, 200.0),
    _ro("probe_kind", "linear", "transducer geometry", choices=tuple(k.value for k in ProbeKind)),
    _ro("rows", 512, "image rows", 16, 4096),
    _ro("cols", 512, "image columns", 16, 4096),
    _ro("depth_mm", 76.8, "imaging depth; pixel spacing = depth_mm / rows", 5.0, 300.0),
    _ro("width_mm", 60.0, "linear probe aperture, mm", 5.0, 200.0),
    _ro("radius_mm", 50.0, "curvilinear face radius, mm", 5.0, 200.0),
    _ro("fan_angle_deg", 60.0, "curvilinear fan opening, deg", 5.0, 170.0),
    _ro("seed", 0, "speckle seed", 0, 2**31 - 1),
    _ro("start_delay_s", 1.0, "wait before the first pass (the graph connects)", 0.0, 600.0),
    _ro("loop", False, "sweep back and forth until shut down"),
    _ro("loop_pause_s", 1.0, "pause between passes, s", 0.0, 600.0),
    _ro("service_timeout_s", 2.0, "longest wait for the start service's answer, s", 0.0, 60.0),
    _ro(
        "service_wait_s",
        30.0,
        "after start_delay_s, how long to wait for the start service to appear (the "
        "compounding node may still be starting) before sweeping without it, s",
        0.0,
        600.0,
    ),
    ParamSpec(
        "wait_for_links",
        [],
        "topics between other nodes that must have a publisher and a subscriber before "
        "the first pass (within service_wait_s): volatile poses sent before a link "
        "matches are lost, and so are the first frames",
        list_of=str,
        read_only=True,
    ),
    _ro(
        "connect_settle_s",
        0.5,
        "how long the graph must stay connected before the first pass: this node sees "
        "endpoints before the other nodes have matched each other, s",
        0.0,
        60.0,
    ),
    _ro(
        "idle_joint_states",
        True,
        "before and between passes, publish the standing arm's joint state at "
        "joint_rate_hz, as a robot driver does: the probe pose stream is live before the "
        "first frame, and the start service can tell",
    ),
    _ro(
        "start_retry_s",
        0.1,
        "after the start service refuses a pass (its stream not yet live), ask again after "
        "this long, until service_wait_s has passed, s",
        0.01,
        10.0,
    ),
    _ro("publish_xray", True, "publish the lateral X-ray at the start"),
    _ro("xray_depth_registered", True, "X-ray depth known (CBCT registration)"),
    _ro("xray_pixel_mm", 0.5, "X-ray detector pixel pitch, mm", 0.1, 5.0),
    _ro("ground_truth_points_per_level", 8192, "surface samples per vertebra", 16, 10**6),
)

_RENDER_LOOKAHEAD = 15  # frames rendered ahead (0.5 s at 30 Hz)


class _RenderAhead:
    """Renders one pass's frames in order in a worker thread, at most ``lookahead`` ahead.

    Args:
        render: frame index of the plan -> (rows, cols) uint8 image.
        lookahead: frames rendered but not yet taken, at most.
    """

    def __init__(self, render, lookahead: int) -> None:
        self._render = render
        self._lookahead = lookahead
        self._cond = threading.Condition()
        self._order = np.zeros(0, dtype=np.int64)
        self._images: dict[int, np.ndarray] = {}
        self._next = self._taken = self._generation = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="phantom-render", daemon=True)
        self._thread.start()

    def start_pass(self, order: np.ndarray) -> None:
        """Render plan frames ``order[0], order[1], ...`` from now on (drops the last pass)."""
        with self._cond:
            self._order = np.asarray(order)
            self._images.clear()
            self._next = self._taken = 0
            self._generation += 1
            self._cond.notify_all()

    def take(self, i: int) -> np.ndarray | None:
        """The image of pass position ``i`` if it is rendered (then forgotten), else None."""
        with self._cond:
            image = self._images.pop(i, None)
            if image is not None:
                self._taken = i + 1
                self._cond.notify_all()
            return image

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(
                    lambda: (
                        self._closed
                        or self._next < min(len(self._order), self._taken + self._lookahead)
                    )
                )
                if self._closed:
                    return
                generation, i, k = self._generation, self._next, int(self._order[self._next])
            image = self._render(k)  # outside the lock: numpy releases the GIL while it works
            with self._cond:
                if generation == self._generation:
                    self._images[i] = image
                    self._next = i + 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=5.0)


class PhantomNode(Node):
    """Streams a simulated robotic US sweep, its X-ray and its ground truth."""

    def __init__(self, **kwargs) -> None:
        super().__init__("phantom", **kwargs)
        self.p = p = declare_params(self, PARAMS)
        if bool(p["verse_mask"]) != bool(p["verse_centroids"]):
            raise ParameterError("parameters 'verse_mask' and 'verse_centroids' go together")
        for name in ("verse_mask", "verse_centroids"):
            if p[name] and not os.path.isfile(p[name]):
                raise ParameterError(f"parameter '{name}': no such file {p[name]!r}")
        if not p["lateral_offsets_mm"]:
            raise ParameterError("parameter 'lateral_offsets_mm': expected at least one offset")
        if p["n_frames"] == 1:
            raise ParameterError("parameter 'n_frames': expected 0 or >= 2, got 1")
        self.probe = ProbeModel(
            kind=ProbeKind(p["probe_kind"]),
            shape=(p["rows"], p["cols"]),
            pixel_mm=p["depth_mm"] / p["rows"],
            width_mm=p["width_mm"],
            radius_mm=p["radius_mm"],
            fan_angle_deg=p["fan_angle_deg"],
        )
        self._joint_names = [f"{p['robot_name']}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
        self._pub_joints = self.create_publisher(JointState, p["joint_states_topic"], STATE_QOS)
        self._pub_image = self.create_publisher(Image, p["image_topic"], SENSOR_QOS)
        self._pub_xray = self.create_publisher(XrayView, p["xray_topic"], RESULT_QOS)
        self._pub_truth = self.create_publisher(PointCloud2, p["ground_truth_topic"], RESULT_QOS)
        self._pub_active = self.create_publisher(Bool, p["sweep_active_topic"], RESULT_QOS)
        # One JSON line per pass (frames and joint states sent) for monitors.
        self._pub_status = self.create_publisher(String, "~/status", RESULT_QOS)
        self._start_client = self.create_client(Trigger, p["start_service"])
        self._wait_logged = False
        self._connected_since_ns: int | None = None
        self._stop_client = self.create_client(Trigger, p["stop_service"])

        self.plan: RobotSweep | None = None
        self.error: str | None = None
        self.joint_states_published = 0  # during passes
        self.idle_joint_states_published = 0  # the standing arm, before and between passes
        self.start_refusals = 0
        self._hold_q: np.ndarray | None = None  # where the arm stands between passes
        self._last_joint_ns = -1
        self._refused_since_ns: int | None = None
        self.frames_published = 0
        self.passes_completed = 0
        self.latest_frame_delay_s = 0.0  # publish time minus acquisition stamp
        self._state = "preparing"
        self._start_after_ns = self._now_ns() + int(p["start_delay_s"] * 1e9)
        self._renderer: _RenderAhead | None = None
        self._closed = False
        self._warned_absent: set[str] = set()
        self._ready = threading.Event()
        threading.Thread(target=self._prepare, name="phantom-prepare", daemon=True).start()
        self._timer = self.create_timer(1.0 / p["joint_rate_hz"], self._on_tick)

    # ----- read-only state for tests and monitoring -----
    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    @property
    def finished(self) -> bool:
        """The last pass ended (never with ``loop``)."""
        return self._state == "done"

    @property
    def sweep_active(self) -> bool:
        return self._state == "streaming"

    # ----- preparation (worker thread) -----
    def _prepare(self) -> None:
        p = self.p
        try:
            if p["verse_mask"]:
                spine = load_verse_spine(p["verse_mask"], p["verse_centroids"])
            else:
                spine = generate_spine(p["spine_seed"])
            plan = plan_robot_sweep(
                spine,
                transform_from_xyz_rpy(p["table_xyz_mm"], p["table_rpy_deg"]),
                transform_from_xyz_rpy(p["hand_eye_xyz_mm"], p["hand_eye_rpy_deg"]),
                sweep_speed_mm_s=p["sweep_speed_mm_s"],
                frame_rate_hz=p["frame_rate_hz"],
                joint_rate_hz=p["joint_rate_hz"],
                n_frames=p["n_frames"] or None,
                standoff_mm=p["standoff_mm"],
                lateral_offsets_mm=tuple(p["lateral_offsets_mm"]),
            )
            sim = BModeSimulator(spine, self.probe, seed=p["seed"])
            self._xray_msg = self._xray(spine, plan, sim) if p["publish_xray"] else None
            self._truth_msg = self._ground_truth(spine, plan)
            if self._closed:
                return
            self._renderer = _RenderAhead(
                lambda k: sim.render(plan.T_spine_probe[k]).image, _RENDER_LOOKAHEAD
            )
            self.plan = plan
            self.get_logger().info(
                f"{spine.spine_id}: {plan.n_frames} frames over {plan.path_length_mm:.0f} mm at "
                f"{plan.speed_mm_s:.1f} mm/s, worst IK residual {plan.max_position_error_mm:.4f} mm"
            )
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            self.get_logger().error(f"cannot prepare the phantom sweep: {self.error}")
            if not isinstance(exc, ValueError | OSError | RuntimeError):
                raise  # a programming error: let its traceback show
        finally:
            self._ready.set()

    def _xray(self, spine, plan: RobotSweep, sim: BModeSimulator) -> XrayView:
        geometry = lateral_geometry(spine, pixel_mm=self.p["xray_pixel_mm"])
        labelled = all(np.any(v.part == 1) for v in spine.vertebrae.values())
        if not labelled:
            self.get_logger().warning("spine without part codes: the X-ray label image is empty")
        shot = render_lateral_xray(spine, geometry, scene=sim.scene, labels=labelled)
        header = Header(frame_id=self.p["base_frame"])
        plane = None
        if self.p["xray_depth_registered"]:  # as if a CBCT had registered the depth
            plane = apply_transform(plan.T_base_spine, body_midplane_point_mm(spine)[None])[0]
        geometry_base = transform_geometry(geometry, plan.T_base_spine)
        return xray_view_to_msg(geometry_base, shot.image, shot.label, header, plane)

    def _ground_truth(self, spine, plan: RobotSweep):
        n = self.p["ground_truth_points_per_level"]
        pts, levels, parts = [], [], []
        for lv in spine.levels:
            xyz, part = sample_surface(spine.vertebrae[lv], n, seed=lv)
            pts.append(apply_transform(plan.T_base_spine, xyz))
            levels.append(np.full(n, lv, dtype=np.uint8))
            parts.append(part.astype(np.uint8))
        header = Header(frame_id=self.p["base_frame"])
        extra = {"level": np.concatenate(levels), "part": np.concatenate(parts)}
        return points_mm_to_cloud(np.vstack(pts), header, extra)

    # ----- streaming (timer at the joint rate) -----
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_tick(self) -> None:
        if not self._ready.is_set() or self.error is not None or self._state == "done":
            return
        now = self._now_ns()
        self._advance(now)
        if self._state not in ("streaming", "done"):
            self._publish_idle(now)

    def _advance(self, now: int) -> None:
        if self._state == "preparing":
            if now < self._start_after_ns or self._awaiting_start_service(now):
                return
            self._publish_results(now)
            self._request_start(now)
        elif self._state == "starting":
            timed_out = now - self._start_call_ns > self.p["service_timeout_s"] * 1e9
            if self._start_future is not None and self._start_future.done():
                self._on_start_answer(now, self._start_future.result())
            elif self._start_future is None or timed_out:
                self._begin_pass(now)
        elif self._state == "retrying" and now >= self._retry_ns:
            self._call_start(now)
        elif self._state == "streaming":
            self._stream(now)
        elif self._state == "pausing" and now >= self._resume_ns:
            self._request_start(now)

    def _awaiting_start_service(self, now: int) -> bool:
        """True while the graph is not connected and ``service_wait_s`` has not run out.

        Connected, for ``connect_settle_s`` without a break: the start service is up, the
        joint-state and image publishers have matched every subscriber the graph shows
        (at least one), and every topic in
        ``wait_for_links`` has a publisher and a subscriber. Without this, a compounding
        node that came up after the start delay missed the whole sweep, and a probe
        tracker matched a few ms late lost the first joint state or pose, so the first
        frame had no pose.
        """
        if self._graph_connected():
            if self._connected_since_ns is None:
                self._connected_since_ns = now
            if now - self._connected_since_ns >= self.p["connect_settle_s"] * 1e9:
                return False
        else:
            self._connected_since_ns = None
        waited_s = (now - self._start_after_ns) / 1e9
        if waited_s < self.p["service_wait_s"]:
            if not self._wait_logged:
                self._wait_logged = True
                links = "".join(f", {t}" for t in self.p["wait_for_links"])
                self.get_logger().info(
                    f"waiting up to {self.p['service_wait_s']:.0f} s for "
                    f"{self.p['start_service']}, subscribers of the streams{links}"
                )
            return True
        return False

    def _graph_connected(self) -> bool:
        # Every reader of the streams that discovery knows of must have matched this node's
        # writer: joint states are volatile, so a probe tracker matched after the first
        # pass began never gets its first poses, and their frames are dropped.
        streams_matched = all(
            pub.get_subscription_count() >= max(1, self.count_subscribers(pub.topic_name))
            for pub in (self._pub_joints, self._pub_image)
        )
        return (
            self._start_client.service_is_ready()
            and streams_matched
            and all(
                self.count_publishers(t) > 0 and self.count_subscribers(t) > 0
                for t in self.p["wait_for_links"]
            )
        )

    def _publish_results(self, now: int) -> None:
        stamp = ns_to_stamp(now)
        if self._xray_msg is not None:
            self._xray_msg.header.stamp = stamp
            self._xray_msg.image.header.stamp = self._xray_msg.labels.header.stamp = stamp
            self._pub_xray.publish(self._xray_msg)
        self._truth_msg.header.stamp = stamp
        self._pub_truth.publish(self._truth_msg)

    def _call(self, client, name: str):
        if client.service_is_ready():
            return client.call_async(Trigger.Request())
        if name not in self._warned_absent:
            self._warned_absent.add(name)
            self.get_logger().info(f"service {name} is not available; sweeping without it")
        return None

    def _request_start(self, now: int) -> None:
        plan, forward = self.plan, self.passes_completed % 2 == 0
        # Odd passes play the plan backwards, so the arm never jumps between passes.
        self._q = plan.joint_positions_rad if forward else plan.joint_positions_rad[::-1]
        self._frame_ns = (
            plan.frame_times_ns if forward else plan.duration_ns - plan.frame_times_ns[::-1]
        )
        order = np.arange(plan.n_frames)
        self._renderer.start_pass(order if forward else order[::-1])  # render while waiting
        self._call_start(now)

    def _call_start(self, now: int) -> None:
        self._start_future = self._call(self._start_client, self.p["start_service"])
        self._start_call_ns = now
        self._state = "starting"

    def _on_start_answer(self, now: int, answer: Trigger.Response | None) -> None:
        """Begin the pass, or ask again while the start service refuses (its streams are
        not live yet: the first frames would be lost) and ``service_wait_s`` lasts."""
        if answer is None or answer.success:
            self._begin_pass(now)
            return
        self.start_refusals += 1
        if self._refused_since_ns is None:
            self._refused_since_ns = now
            self.get_logger().info(f"{self.p['start_service']} refused: {answer.message}")
        if now - self._refused_since_ns < self.p["service_wait_s"] * 1e9:
            self._retry_ns = now + int(self.p["start_retry_s"] * 1e9)
            self._state = "retrying"
            return
        self.get_logger().warning(
            f"{self.p['start_service']} still refuses after {self.p['service_wait_s']:g} s "
            f"({answer.message}); sweeping without it"
        )
        self._begin_pass(now)

    def _publish_idle(self, now: int) -> None:
        """The standing arm's joint state, stamped now (never twice at one stamp)."""
        if not self.p["idle_joint_states"] or self.plan is None or now <= self._last_joint_ns:
            return
        if self._hold_q is None:
            self._hold_q = self.plan.joint_positions_rad[0]
        self._send_joints(now, self._hold_q)
        self.idle_joint_states_published += 1

    def _begin_pass(self, now: int) -> None:
        self._refused_since_ns = None
        self._t0, self._next_joint, self._next_frame = now, 0, 0
        self._state = "streaming"
        self._pub_active.publish(Bool(data=True))

    def _stream(self, now: int) -> None:
        plan = self.plan
        times = plan.joint_times_ns
        while self._next_joint < len(times) and self._t0 + times[self._next_joint] <= now:
            self._send_joints(self._t0 + int(times[self._next_joint]), self._q[self._next_joint])
            self.joint_states_published += 1
            self._next_joint += 1
        # a frame goes out once the joint sample at or after its stamp has gone out
        while self._next_frame < plan.n_frames:
            t = int(self._frame_ns[self._next_frame])
            if int(np.searchsorted(times, t)) >= self._next_joint:
                break
            image = self._renderer.take(self._next_frame)
            if image is None:
                break
            self._publish_image(self._t0 + t, image, now)
            self._next_frame += 1
        if self._next_joint == len(times) and self._next_frame == plan.n_frames:
            self._end_pass(now)

    def status(self) -> dict:
        """Counters of what this node has streamed."""
        return {
            "frames_sent": self.frames_published,
            "joint_states_sent": self.joint_states_published,
            "idle_joint_states_sent": self.idle_joint_states_published,
            "start_refusals": self.start_refusals,
            "passes_completed": self.passes_completed,
            "latest_frame_delay_s": self.latest_frame_delay_s,
        }

    def _send_joints(self, stamp_ns: int, q: np.ndarray) -> None:
        msg = JointState(name=self._joint_names, position=[float(v) for v in q])
        msg.header.stamp = ns_to_stamp(stamp_ns)
        self._pub_joints.publish(msg)
        self._last_joint_ns = stamp_ns

    def _publish_image(self, stamp_ns: int, image: np.ndarray, now: int) -> None:
        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=self.p["image_frame"])
        self._pub_image.publish(array_to_image(image, "mono8", header))
        self.frames_published += 1
        self.latest_frame_delay_s = (now - stamp_ns) * 1e-9

    def _end_pass(self, now: int) -> None:
        self._call(self._stop_client, self.p["stop_service"])
        self._pub_status.publish(String(data=json.dumps(self.status())))
        self._pub_active.publish(Bool(data=False))
        self.passes_completed += 1
        self._hold_q = self._q[-1]
        if self.p["loop"]:
            self._resume_ns = now + int(self.p["loop_pause_s"] * 1e9)
            self._state = "pausing"
        else:
            self._state = "done"
            self._timer.cancel()
            self._renderer.close()
            self.get_logger().info(f"sweep done: {self.frames_published} frames published")

    def close(self) -> None:
        """Stop the render thread (idempotent)."""
        self._closed = True
        if self._renderer is not None:
            self._renderer.close()

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(PhantomNode, args)


if __name__ == "__main__":
    main()
