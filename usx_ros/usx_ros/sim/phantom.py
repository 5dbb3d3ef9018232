"""phantom: a digital patient, robot, US machine and C-arm in one node (no hardware).

Plans a robotic sweep over a phantom spine (``usx_model.sim.robot_sweep``), then
streams what the real devices would: ``/lbr/joint_states`` (JointState, the lbr driver's
joint names) and ``/us/image`` (mono8 B-mode frames from ``BModeSimulator``, stamped with
their acquisition time: the probe pose at that stamp is what the frame shows). At the
start it publishes once, transient-local, the lateral X-ray (``/usx/xray``) and the ground
truth (``/usx/phantom/ground_truth``: dense surface samples of every vertebra, base frame).
Each pass is recorded as a ``/usx/sweep/record`` goal (usx_msgs/action/RecordSweep, a new
sweep id per pass; the phantom is its client, as a robot program would be), ended with
``/usx/sweep/stop`` (std_srvs/Trigger) when the pass's last frame is out, and framed by
``/usx/phantom/sweep_active`` for bags. With ``loop`` the sweep runs back and forth. Before
and between passes the standing arm's joint state goes out at the joint rate, as from a
robot driver, and a pass begins on the goal's first feedback (the sweep is recording); a
goal refused because the pose stream has not reached us_compounding yet is sent again,
with a new id, every ``start_retry_s``.

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
import uuid
from dataclasses import dataclass

import numpy as np
from rclpy.action import ActionClient
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import Trigger

from usx_model.sim.playback import SweepPass
from usx_model.sim.probe import ProbeKind
from usx_model.sim.robot_sweep import (
    DEFAULT_TABLE_RPY_DEG,
    DEFAULT_TABLE_XYZ_MM,
    SERPENTINE_OFFSETS_MM,
    RobotSweep,
)
from usx_model.sim.scenario import (
    GroundTruth,
    LateralXray,
    ScenarioConfig,
    build_scenario,
    probe_model,
)
from usx_model.tracking.iiwa import JOINT_NAMES
from usx_msgs.action import RecordSweep
from usx_msgs.msg import XrayView
from usx_ros.conversions import (
    array_to_image,
    ns_to_stamp,
    points_mm_to_cloud,
    xray_view_to_msg,
)
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT, NodeDiagnostics
from usx_ros.health import InputHealth
from usx_ros.interfaces import Endpoint
from usx_ros.nodes.common import PROBE_CALIBRATION_DOC, load_calibration, run_node
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.sim.handshake import Action, Answer, HandshakeConfig, Phase, StartHandshake
from usx_ros.sim.render_ahead import RENDER_LOOKAHEAD, RenderAhead
from usx_ros.sweep_action import ACTION_NAME


def _ro(default, description: str, lo=None, hi=None, **kw):
    """A read-only parameter: the sweep is planned once, at start-up."""
    return param(default, description, min_value=lo, max_value=hi, read_only=True, **kw)


def _xyz(default, description: str, bound: float):
    return _ro(tuple(default), description, -bound, bound, length=3)


@dataclass(frozen=True)
class PhantomParams:
    """Parameters of phantom."""

    spine_seed: int = _ro(0, "seed of the generated phantom spine", 0, 2**31 - 1)
    verse_mask: str = _ro("", "VerSe label volume; with verse_centroids replaces the phantom")
    verse_centroids: str = _ro("", "VerSe centroid JSON of verse_mask")
    table_xyz_mm: tuple[float, ...] = _xyz(
        DEFAULT_TABLE_XYZ_MM, "T_base_table translation, mm", 3000.0
    )
    table_rpy_deg: tuple[float, ...] = _xyz(
        DEFAULT_TABLE_RPY_DEG, "T_base_table rotation, URDF rpy, deg", 360.0
    )
    probe_calibration: str = _ro(
        "",
        PROBE_CALIBRATION_DOC + "; the simulator needs square pixels, the origin at the "
        "face centre and the default T_probe_image",
    )
    base_frame: str = _ro("lbr_link_0", "robot base frame (X-ray, ground truth)")
    image_frame: str = _ro("us_image", "frame_id of the US images")
    robot_name: str = _ro("lbr", "prefix of the joint names (lbr_A1..lbr_A7)")
    joint_rate_hz: float = _ro(100.0, "joint-state rate, Hz", 1.0, 1000.0)
    frame_rate_hz: float = _ro(30.0, "US frame rate, Hz", 1.0, 120.0)
    sweep_speed_mm_s: float = _ro(10.0, "probe speed along the spine, mm/s", 0.5, 500.0)
    n_frames: int = _ro(0, "frames per sweep (>= 2); 0 = set by sweep_speed_mm_s", 0, 100000)
    lateral_offsets_mm: tuple[float, ...] = _ro(
        tuple(SERPENTINE_OFFSETS_MM),
        "one cranio-caudal pass per lateral probe offset, mm (a serpentine sweep)",
    )
    standoff_mm: float = _ro(20.0, "tissue between probe face and spinous tips, mm", 1.0, 200.0)
    probe_kind: str = _ro(
        "linear", "transducer geometry", choices=tuple(k.value for k in ProbeKind)
    )
    rows: int = _ro(512, "image rows (depth = rows x the calibration's pixel spacing)", 16, 4096)
    cols: int = _ro(512, "image columns", 16, 4096)
    width_mm: float = _ro(60.0, "linear probe aperture, mm", 5.0, 200.0)
    radius_mm: float = _ro(50.0, "curvilinear face radius, mm", 5.0, 200.0)
    fan_angle_deg: float = _ro(60.0, "curvilinear fan opening, deg", 5.0, 170.0)
    seed: int = _ro(0, "speckle seed", 0, 2**31 - 1)
    breathing_mm: float = _ro(
        0.0, "peak-to-peak antero-posterior breathing motion of the spine, mm", 0.0, 20.0
    )
    breathing_hz: float = _ro(0.25, "breathing rate, Hz", 0.05, 2.0)
    contact_loss_frac: float = _ro(
        0.0, "share of frames with the probe partly or wholly off the skin", 0.0, 0.9
    )
    start_delay_s: float = _ro(3.0, "wait before the first pass (the graph connects)", 0.0, 600.0)
    loop: bool = _ro(False, "sweep back and forth until shut down")
    loop_pause_s: float = _ro(1.0, "pause between passes, s", 0.0, 600.0)
    service_timeout_s: float = _ro(2.0, "longest wait for the start service's answer, s", 0.0, 60.0)
    service_wait_s: float = _ro(
        30.0,
        "after start_delay_s, how long to wait for the start service to appear (the "
        "compounding node may still be starting) before sweeping without it, s",
        0.0,
        600.0,
    )
    wait_for_links: tuple[str, ...] = _ro(
        (),
        "topics between other nodes that must have a publisher and a subscriber before "
        "the first pass (within service_wait_s): volatile poses sent before a link "
        "matches are lost, and so are the first frames",
    )
    connect_settle_s: float = _ro(
        0.5,
        "how long the graph must stay connected before the first pass: this node sees "
        "endpoints before the other nodes have matched each other, s",
        0.0,
        60.0,
    )
    idle_joint_states: bool = _ro(
        True,
        "before and between passes, publish the standing arm's joint state at "
        "joint_rate_hz, as a robot driver does: the probe pose stream is live before the "
        "first frame, and the start service can tell",
    )
    start_retry_s: float = _ro(
        0.1,
        "after the start service refuses a pass (its stream not yet live), ask again after "
        "this long, until service_wait_s has passed, s",
        0.01,
        10.0,
    )
    publish_xray: bool = _ro(True, "publish the lateral X-ray at the start")
    xray_depth_registered: bool = _ro(True, "X-ray depth known (CBCT registration)")
    xray_pixel_mm: float = _ro(0.5, "X-ray detector pixel pitch, mm", 0.1, 5.0)
    ground_truth_points_per_level: int = _ro(8192, "surface samples per vertebra", 16, 10**6)


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = PhantomParams

#: The longest ``close`` waits for the sweep's preparation to end, s.
PREPARE_JOIN_S = 60.0

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint("publishes", "/lbr/joint_states", "sensor_msgs/msg/JointState", "STATE_QOS"),
    Endpoint("publishes", "/us/image", "sensor_msgs/msg/Image", "SENSOR_QOS", "mono8"),
    Endpoint("publishes", "/usx/xray", "usx_msgs/msg/XrayView", "RESULT_QOS", "publish_xray"),
    Endpoint("publishes", "/usx/phantom/ground_truth", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
    Endpoint("publishes", "/usx/phantom/sweep_active", "std_msgs/msg/Bool", "RESULT_QOS"),
    Endpoint("publishes", "~/status", "std_msgs/msg/String", "RESULT_QOS", "one JSON per pass"),
    Endpoint("calls", ACTION_NAME, "usx_msgs/action/RecordSweep", note="one goal per pass"),
    Endpoint("calls", "/usx/sweep/stop", "std_srvs/srv/Trigger", note="after each pass"),
)


class PhantomNode(Node):
    """Streams a simulated robotic US sweep, its X-ray and its ground truth."""

    def __init__(self, **kwargs) -> None:
        super().__init__("phantom", **kwargs)
        p = declare_params(self, PhantomParams)
        if bool(p.verse_mask) != bool(p.verse_centroids):
            raise ParameterError("parameters 'verse_mask' and 'verse_centroids' go together")
        for name in ("verse_mask", "verse_centroids"):
            path = getattr(p, name)
            if path and not os.path.isfile(path):
                raise ParameterError(f"parameter '{name}': no such file {path!r}")
        if not p.lateral_offsets_mm:
            raise ParameterError("parameter 'lateral_offsets_mm': expected at least one offset")
        if p.n_frames == 1:
            raise ParameterError("parameter 'n_frames': expected 0 or >= 2, got 1")
        self._scenario_cfg = ScenarioConfig.from_params(p, load_calibration(p.probe_calibration))
        try:
            self.probe = probe_model(self._scenario_cfg)
        except ValueError as exc:
            raise ParameterError(f"parameter 'probe_calibration': {exc}") from exc
        self._joint_names = [f"{p.robot_name}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
        self._pub_joints = self.create_publisher(JointState, "/lbr/joint_states", STATE_QOS)
        self._pub_image = self.create_publisher(Image, "/us/image", SENSOR_QOS)
        self._pub_xray = self.create_publisher(XrayView, "/usx/xray", RESULT_QOS)
        self._pub_truth = self.create_publisher(
            PointCloud2, "/usx/phantom/ground_truth", RESULT_QOS
        )
        self._pub_active = self.create_publisher(Bool, "/usx/phantom/sweep_active", RESULT_QOS)
        # One JSON line per pass (frames and joint states sent) for monitors.
        self._pub_status = self.create_publisher(String, "~/status", RESULT_QOS)
        # the phantom takes no input to reject; its counters are what it streamed
        self.diagnostics = NodeDiagnostics(self, InputHealth(self.get_logger()), self.status)
        self._sweep_client = ActionClient(self, RecordSweep, ACTION_NAME)
        self._stop_client = self.create_client(Trigger, "/usx/sweep/stop")
        self._goal_id = ""  # the pass's sweep id
        self._answer: Answer | None = None  # to the last goal: recording, or refused
        self.last_feedback: RecordSweep.Feedback | None = None
        self.results: list[RecordSweep.Result] = []  # of the passes' goals, in order

        self.plan: RobotSweep | None = None
        self.error: str | None = None
        self.joint_states_published = 0  # during passes
        self.idle_joint_states_published = 0  # the standing arm, before and between passes
        self._hold_q: np.ndarray | None = None  # where the arm stands between passes
        self._last_joint_ns = -1
        self.frames_published = 0
        self.passes_completed = 0
        self.latest_frame_delay_s = 0.0  # publish time minus acquisition stamp
        self._handshake = StartHandshake(HandshakeConfig.from_params(p), self._now_ns())
        self._pass: SweepPass | None = None
        self._renderer: RenderAhead | None = None
        self._closed = False
        self._warned_absent: set[str] = set()
        self._ready = threading.Event()
        self._preparing = threading.Thread(
            target=self._prepare, name="phantom-prepare", daemon=True
        )
        self._preparing.start()
        self._timer = self.create_timer(1.0 / p.joint_rate_hz, self._on_tick)

    # ----- read-only state for tests and monitoring -----
    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self.error is None

    @property
    def finished(self) -> bool:
        """The last pass ended (never with ``loop``)."""
        return self._handshake.phase is Phase.DONE

    @property
    def sweep_active(self) -> bool:
        return self._handshake.phase is Phase.STREAMING

    @property
    def start_refusals(self) -> int:
        return self._handshake.refusals

    # ----- preparation (worker thread) -----
    def _prepare(self) -> None:
        try:
            scenario = build_scenario(self._scenario_cfg, self.probe)
            spine, plan, xray = scenario.spine, scenario.plan, scenario.xray
            if xray is not None and not xray.labelled:
                self.get_logger().warning(
                    "spine without part codes: the X-ray label image is empty"
                )
            self._xray_msg = self._xray(xray) if xray is not None else None
            self._truth_msg = self._ground_truth(scenario.truth)
            if self._closed:
                return
            self._renderer = RenderAhead(scenario.render, RENDER_LOOKAHEAD)
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

    def _xray(self, xray: LateralXray) -> XrayView:
        header = Header(frame_id=self.params.base_frame)
        return xray_view_to_msg(xray.geometry, xray.image, xray.label, header, xray.plane_point_mm)

    def _ground_truth(self, truth: GroundTruth) -> PointCloud2:
        header = Header(frame_id=self.params.base_frame)
        extra = {"level": truth.level, "part": truth.part}
        return points_mm_to_cloud(truth.points_mm, header, extra)

    # ----- streaming (timer at the joint rate) -----
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_tick(self) -> None:
        if not self._ready.is_set() or self.error is not None or self.finished:
            return
        now = self._now_ns()
        self._advance(now)
        if self._handshake.phase not in (Phase.STREAMING, Phase.DONE):
            self._publish_idle(now)

    def _advance(self, now: int) -> None:
        answer = self._start_answer()
        step = self._handshake.step(now, self._graph_connected, answer)
        action = step.action
        if action is Action.ANNOUNCE_WAIT:
            links = "".join(f", {t}" for t in self.params.wait_for_links)
            self.get_logger().info(
                f"waiting up to {self.params.service_wait_s:.0f} s for "
                f"{ACTION_NAME}, subscribers of the streams{links}"
            )
        elif action is Action.OPEN:
            self._publish_results(now)
            self._request_start(now)
        elif action is Action.NEXT_PASS:
            self._request_start(now)
        elif action is Action.CALL_START:
            self._call_start(now)
        elif action is Action.STREAM:
            self._stream(now)
        if step.first_refusal:
            self.get_logger().info(f"{ACTION_NAME} refused the pass: {answer.message}")
        if action is Action.GIVE_UP:
            self.get_logger().warning(
                f"{ACTION_NAME} still refuses after "
                f"{self.params.service_wait_s:g} s "
                f"({answer.message}); sweeping without it"
            )
        if action in (Action.BEGIN, Action.GIVE_UP):
            self._begin_pass(now)

    def _graph_connected(self) -> bool:
        """The start service is up, the joint-state and image publishers have matched every
        subscriber the graph shows (at least one), and every topic in ``wait_for_links``
        has a publisher and a subscriber."""
        # Every reader of the streams that discovery knows of must have matched this node's
        # writer: joint states are volatile, so a probe tracker matched after the first
        # pass began never gets its first poses, and their frames are dropped.
        streams_matched = all(
            pub.get_subscription_count() >= max(1, self.count_subscribers(pub.topic_name))
            for pub in (self._pub_joints, self._pub_image)
        )
        return (
            self._sweep_client.server_is_ready()
            and streams_matched
            and all(
                self.count_publishers(t) > 0 and self.count_subscribers(t) > 0
                for t in self.params.wait_for_links
            )
        )

    def _start_answer(self) -> Answer | None:
        """The answer to the last goal if it has come: recording, rejected or refused."""
        return self._answer

    def _publish_results(self, now: int) -> None:
        stamp = ns_to_stamp(now)
        if self._xray_msg is not None:
            self._xray_msg.header.stamp = stamp
            self._xray_msg.image.header.stamp = self._xray_msg.labels.header.stamp = stamp
            self._pub_xray.publish(self._xray_msg)
        self._truth_msg.header.stamp = stamp
        self._pub_truth.publish(self._truth_msg)

    def _call(self, client):
        if client.service_is_ready():
            return client.call_async(Trigger.Request())
        name = client.service_name
        if name not in self._warned_absent:
            self._warned_absent.add(name)
            self.get_logger().info(f"service {name} is not available; sweeping without it")
        return None

    def _request_start(self, now: int) -> None:
        self._pass = SweepPass(self.plan, self.passes_completed)
        self._renderer.start_pass(self._pass.order)  # render while waiting
        self._call_start(now)

    def _call_start(self, now: int) -> None:
        self._answer = None
        if not self._sweep_client.server_is_ready():
            if ACTION_NAME not in self._warned_absent:
                self._warned_absent.add(ACTION_NAME)
                self.get_logger().info(
                    f"action {ACTION_NAME} is not available; sweeping without it"
                )
            self._handshake.called(now, sent=False)
            return
        self._goal_id = f"phantom-{uuid.uuid4().hex[:8]}-pass{self.passes_completed}"
        goal = RecordSweep.Goal(sweep_id=self._goal_id)  # ended by the stop service
        future = self._sweep_client.send_goal_async(goal, feedback_callback=self._on_feedback)
        future.add_done_callback(lambda f, sweep_id=self._goal_id: self._on_goal(f, sweep_id))
        self._handshake.called(now, sent=True)

    def _on_goal(self, future, sweep_id: str) -> None:
        handle = future.result()
        if not handle.accepted:
            if sweep_id == self._goal_id:
                self._answer = Answer(
                    False, f"goal {sweep_id!r} rejected (us_compounding inactive?)"
                )
            return
        result = handle.get_result_async()
        result.add_done_callback(lambda f: self._on_result(f.result().result, sweep_id))

    def _on_feedback(self, msg) -> None:
        fb = msg.feedback
        if fb.sweep_id != self._goal_id:
            return
        self.last_feedback = fb
        if self._answer is None:
            self._answer = Answer(True)
        for warning in fb.warnings:
            self.get_logger().warning(f"sweep {fb.sweep_id}: {warning}", throttle_duration_sec=5.0)

    def _on_result(self, result, sweep_id: str) -> None:
        if result.outcome == "refused":
            if sweep_id == self._goal_id and self._answer is None:
                self._answer = Answer(False, result.message)
            return
        self.results.append(result)
        log = self.get_logger().info if result.success else self.get_logger().warning
        log(f"{ACTION_NAME}: {result.outcome}: {result.message}")

    def _publish_idle(self, now: int) -> None:
        """The standing arm's joint state, stamped now (never twice at one stamp)."""
        if not self.params.idle_joint_states or self.plan is None or now <= self._last_joint_ns:
            return
        if self._hold_q is None:
            self._hold_q = self.plan.joint_positions_rad[0]
        self._send_joints(now, self._hold_q)
        self.idle_joint_states_published += 1

    def _begin_pass(self, now: int) -> None:
        self._pass.begin(now)
        self._pub_active.publish(Bool(data=True))

    def _stream(self, now: int) -> None:
        sweep_pass = self._pass
        for stamp_ns, q in sweep_pass.due_joints(now):
            self._send_joints(stamp_ns, q)
            self.joint_states_published += 1
        while (due := sweep_pass.due_frame()) is not None:
            i, stamp_ns = due
            image = self._renderer.take(i)
            if image is None:
                break
            self._publish_image(stamp_ns, image, now)
            sweep_pass.frame_sent()
        if sweep_pass.finished:
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
        header = Header(stamp=ns_to_stamp(stamp_ns), frame_id=self.params.image_frame)
        self._pub_image.publish(array_to_image(image, "mono8", header))
        self.frames_published += 1
        self.latest_frame_delay_s = (now - stamp_ns) * 1e-9

    def _end_pass(self, now: int) -> None:
        self._call(self._stop_client)
        self._pub_status.publish(String(data=json.dumps(self.status())))
        self._pub_active.publish(Bool(data=False))
        self.passes_completed += 1
        self._hold_q = self._pass.last_q
        if self._handshake.pass_ended(now) is Phase.DONE:
            self._timer.cancel()
            self._renderer.close()
            self.get_logger().info(f"sweep done: {self.frames_published} frames published")

    def close(self) -> None:
        """Stop the render thread and wait for the preparation (idempotent).

        A process that exits while the preparation thread is still inside native code
        (Open3D, SciPy) can abort in its teardown ("terminate called without an active
        exception"): a graph that stops at start-up, because another node refused its
        parameters, closes the phantom seconds after it was made. The preparation cannot
        be interrupted; it ends (and then does nothing more) within its own run time.
        """
        self._closed = True
        if threading.current_thread() is not self._preparing:
            self._preparing.join(timeout=PREPARE_JOIN_S)
            if self._preparing.is_alive():
                self.get_logger().warning(
                    f"the sweep's preparation did not end within {PREPARE_JOIN_S:.0f} s"
                )
        if self._renderer is not None:
            self._renderer.close()

    def destroy_node(self) -> None:
        self.close()
        self._sweep_client.destroy()  # destroy_node leaves action clients to the GC
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(PhantomNode, args)


if __name__ == "__main__":
    main()
