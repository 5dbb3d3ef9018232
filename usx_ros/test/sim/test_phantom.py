"""phantom in-process: two short passes (there and back) against the plan and the core."""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image, JointState, PointCloud2
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from usx_model.base.transforms import apply_transform
from usx_model.sim.bmode import BModeSimulator
from usx_model.sim.phantom.spine import generate_spine
from usx_model.tracking.iiwa import forward_kinematics
from usx_msgs.msg import XrayView
from usx_ros.conversions import cloud_to_array, m_to_mm, stamp_to_ns
from usx_ros.params import ParameterError
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS
from usx_ros.sim.phantom import PhantomNode
from usx_ros.sweep_action import ACTION_NAME
from usx_ros.testing import serve_record_sweep, spin_until, write_probe_calibration

pytestmark = pytest.mark.ros

N_FRAMES, SIZE = 20, 128
SMALL = {
    "n_frames": N_FRAMES,
    "lateral_offsets_mm": [0.0],  # one pass: 20 frames over three would outrun the joints
    "rows": SIZE,
    "cols": SIZE,
    "xray_pixel_mm": 2.0,
    "ground_truth_points_per_level": 256,
    "start_delay_s": 0.3,
    "service_wait_s": 10.0,  # the observer serves the sweep action: wait for discovery
    "loop": True,
    "loop_pause_s": 0.1,
    "seed": 3,
}


def _overrides(**kw) -> list[Parameter]:
    return [Parameter(k, value=v) for k, v in {**SMALL, **kw}.items()]


@pytest.fixture(scope="module", autouse=True)
def _small_probe(tmp_path_factory):
    """SMALL images 60 mm deep: a calibration of 60 / SIZE mm pixels, SIZE wide."""
    path = tmp_path_factory.mktemp("calibration") / "probe.yaml"
    SMALL["probe_calibration"] = write_probe_calibration(path, 60.0 / SIZE, SIZE)
    yield
    del SMALL["probe_calibration"]


@pytest.fixture(scope="module")
def run(ros_context):
    """Two passes of a 20-frame sweep, everything the graph saw, and the node."""
    phantom = PhantomNode(context=ros_context, parameter_overrides=_overrides())
    observer = rclpy.create_node("phantom_observer", context=ros_context)
    got = {"joints": [], "images": [], "active": [], "goals": [], "stop": 0}
    observer.create_subscription(JointState, "/lbr/joint_states", got["joints"].append, STATE_QOS)
    observer.create_subscription(Image, "/us/image", got["images"].append, SENSOR_QOS)
    observer.create_subscription(Bool, "/usx/phantom/sweep_active", got["active"].append, 10)

    def service(key):
        def handle(request, response):
            got[key] += 1
            response.success = True
            return response

        return handle

    def record(goal):
        got["goals"].append(goal)
        return True, "sweep started"

    server = serve_record_sweep(observer, ACTION_NAME, record)
    observer.create_service(Trigger, "/usx/sweep/stop", service("stop"))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(phantom)
    executor.add_node(observer)

    def two_passes_received() -> bool:
        # The stop call can be served before the last joint states and images are taken
        # from their queues (a loaded machine): wait for the streams too.
        plan = phantom.plan
        return (
            got["stop"] == 2
            and len(got["active"]) == 4
            and _split_joints(got["joints"], plan.joint_positions_rad) is not None
            and len(got["images"]) >= 2 * plan.n_frames
        )

    done = spin_until(executor, two_passes_received, 40.0)
    assert done, (
        f"phantom did not finish two passes: error={phantom.error}, {got['stop']} stops, "
        f"{len(got['joints'])} joint states, {len(got['images'])} images"
    )
    snapshot = {k: list(v) if isinstance(v, list) else v for k, v in got.items()}
    server.destroy()  # later tests serve the action themselves
    yield phantom, snapshot, executor, ros_context
    executor.shutdown()
    phantom.destroy_node()
    observer.destroy_node()


def _split_joints(joints: list, q: np.ndarray) -> list[tuple[list, list]] | None:
    """(standing, pass) joint states of the first two passes (there and back), or None
    while they are incomplete.

    The standing arm's states repeat the pass's first sample; the pass begins at the last
    of them, since its second sample differs (the arm moves).
    """
    positions = np.array([m.position for m in joints]).reshape(-1, q.shape[1])
    split, i = [], 0
    for q_pass in (q, q[::-1]):
        j = i
        while j < len(positions) and np.array_equal(positions[j], q_pass[0]):
            j += 1
        start = j - 1
        if j == len(positions) or start + len(q_pass) > len(positions):
            return None
        split.append((joints[i:start], joints[start : start + len(q_pass)]))
        i = start + len(q_pass)
    # the standing arm after the second pass has been seen too
    return split if i < len(positions) else None


def _passes(run):
    phantom, got, *_ = run
    plan = phantom.plan
    n_f = plan.n_frames
    (_, first), (_, second) = _split_joints(got["joints"], plan.joint_positions_rad)
    images = got["images"][: 2 * n_f]
    return plan, (first, images[:n_f]), (second, images[n_f:])


def _stamps(msgs) -> np.ndarray:
    return np.array([stamp_to_ns(m.header.stamp) for m in msgs], dtype=np.int64)


def test_streams_every_frame_as_mono8_with_increasing_stamps(run):
    phantom, got, *_ = run
    _, first, second = _passes(run)
    assert len(got["images"]) >= 2 * N_FRAMES and phantom.frames_published >= 2 * N_FRAMES
    for images in (first[1], second[1]):
        assert [(m.height, m.width, m.step, m.encoding) for m in images] == [
            (SIZE, SIZE, SIZE, "mono8")
        ] * N_FRAMES
        assert {m.header.frame_id for m in images} == {"us_image"}
        np.testing.assert_allclose(np.diff(_stamps(images)), 1e9 / 30, atol=2)
    assert _stamps(second[1])[0] > _stamps(first[1])[-1]


def test_joint_states_replay_the_plan_there_and_back(run):
    plan, first, second = _passes(run)
    for joints, q in (
        (first[0], plan.joint_positions_rad),
        (second[0], plan.joint_positions_rad[::-1]),
    ):
        assert {tuple(m.name) for m in joints} == {tuple(f"lbr_A{i}" for i in range(1, 8))}
        np.testing.assert_array_equal(np.diff(_stamps(joints)), 10_000_000)
        np.testing.assert_allclose([m.position for m in joints], q, atol=1e-12)


def _probe_at(joints, stamps_ns, T_ee_probe) -> np.ndarray:
    """FK of the received joint states, linearly interpolated at the image stamps."""
    t = _stamps(joints)
    q = np.array([m.position for m in joints])
    q_at = np.stack([np.interp(stamps_ns, t, q[:, j]) for j in range(7)], axis=1)
    return forward_kinematics(q_at) @ T_ee_probe


def test_the_standing_arm_publishes_its_joint_state_before_and_between_passes(run):
    phantom, got, *_ = run
    plan = phantom.plan
    (before, _), (between, _) = _split_joints(got["joints"], plan.joint_positions_rad)
    # start_delay_s 0.3 s and loop_pause_s 0.1 s at 100 Hz (less on a loaded machine)
    assert len(before) >= 5 and len(between) >= 2
    assert phantom.idle_joint_states_published >= len(before) + len(between)
    stamps = _stamps(got["joints"])
    assert np.all(np.diff(stamps) > 0), "joint states must never repeat or go back in time"
    assert phantom.status()["idle_joint_states_sent"] == phantom.idle_joint_states_published


def test_fk_of_joint_states_at_each_image_stamp_is_the_planned_probe_pose(run):
    plan, first, second = _passes(run)
    for (joints, images), order in ((first, slice(None)), (second, slice(None, None, -1))):
        probe = _probe_at(joints, _stamps(images), plan.T_ee_probe)
        err = np.linalg.norm(probe[:, :3, 3] - plan.T_base_probe[order, :3, 3], axis=1)
        # 227 mm/s between 10 ms joint samples: linear joint interpolation bows by < 1 mm;
        # frames that fall on a joint sample (every third one) are exact
        assert err.max() < 1.0
        on_sample = np.isin(_stamps(images), _stamps(joints))
        assert on_sample.sum() >= N_FRAMES // 3 and err[on_sample].max() < 0.1


def test_first_image_shows_the_first_planned_pose(run):
    phantom, *_ = run
    plan, first, _ = _passes(run)
    sim = BModeSimulator(generate_spine(0), phantom.probe, seed=SMALL["seed"])
    want = sim.render(plan.T_spine_probe[0]).image
    got = np.frombuffer(bytes(first[1][0].data), dtype=np.uint8).reshape(SIZE, SIZE)
    np.testing.assert_array_equal(got, want)
    assert got.max() > 0


def test_a_goal_the_stop_service_and_sweep_active_frame_each_pass(run):
    phantom, got, *_ = run
    assert (len(got["goals"]), got["stop"]) == (2, 2)
    assert [m.data for m in got["active"]] == [True, False, True, False]
    ids = [g.sweep_id for g in got["goals"]]
    assert len(set(ids)) == 2 and all(i.startswith("phantom-") for i in ids)
    assert [g.duration_s for g in got["goals"]] == [0.0, 0.0]  # ended by the stop service
    assert [r.outcome for r in phantom.results[:2]] == ["succeeded"] * 2


def test_xray_and_ground_truth_reach_a_late_subscriber(run):
    phantom, _, executor, context = run
    late = rclpy.create_node("phantom_late", context=context)
    xray, truth = [], []
    late.create_subscription(XrayView, "/usx/xray", xray.append, RESULT_QOS)
    late.create_subscription(PointCloud2, "/usx/phantom/ground_truth", truth.append, RESULT_QOS)
    executor.add_node(late)
    try:
        assert spin_until(executor, lambda: xray and truth, timeout_s=10.0)
    finally:
        executor.remove_node(late)
        late.destroy_node()
    plan, msg = phantom.plan, xray[0]
    assert msg.header.frame_id == truth[0].header.frame_id == "lbr_link_0"
    assert (msg.image.encoding, msg.labels.encoding) == ("mono16", "mono8")
    assert (msg.image.height, msg.image.width) == (msg.labels.height, msg.labels.width)
    labels = np.frombuffer(bytes(msg.labels.data), dtype=np.uint8)
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5}
    assert msg.pixel_spacing == pytest.approx(0.002) and msg.depth_registered
    spine = generate_spine(0)
    centre = np.mean([v.body_centroid_mm for v in spine.vertebrae.values()], axis=0)
    want = apply_transform(plan.T_base_spine, centre[None])[0]
    p = msg.lateral_plane_point
    np.testing.assert_allclose(m_to_mm([p.x, p.y, p.z]), want, atol=1e-6)
    u = np.array([msg.u_axis.x, msg.u_axis.y, msg.u_axis.z])
    np.testing.assert_allclose(u, plan.T_base_spine[:3, :3] @ [0.0, -1.0, 0.0], atol=1e-12)

    cloud = cloud_to_array(truth[0], required=("x", "y", "z", "level", "part"))
    assert len(cloud) == 5 * 256 and set(np.unique(cloud["level"])) == {1, 2, 3, 4, 5}
    xyz = m_to_mm(np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1))
    verts = np.vstack([v.vertices_mm for v in spine.vertebrae.values()])
    lo, hi = (
        apply_transform(plan.T_base_spine, verts).min(0),
        apply_transform(plan.T_base_spine, verts).max(0),
    )
    assert np.all((xyz >= lo - 0.1) & (xyz <= hi + 0.1))


def test_first_pass_waits_for_the_start_service(ros_context):
    """A compounding node that comes up late still gets the whole sweep."""
    node = PhantomNode(
        context=ros_context,
        parameter_overrides=_overrides(service_wait_s=30.0, loop=False),
        cli_args=_services("/late"),
    )
    late = rclpy.create_node("late_compounding", context=ros_context)
    late.create_subscription(JointState, "/lbr/joint_states", lambda m: None, STATE_QOS)
    late.create_subscription(Image, "/us/image", lambda m: None, SENSOR_QOS)
    starts = []
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(late)
    try:
        assert spin_until(executor, lambda: node.ready, timeout_s=20.0)
        # Well past start_delay_s (0.3 s): nothing may stream while the service is absent.
        spin_until(executor, lambda: node.frames_published > 0, timeout_s=1.5)
        assert node.frames_published == node.joint_states_published == 0

        def start(goal):
            starts.append(node.frames_published)
            return True, "sweep started"

        serve_record_sweep(late, ACTION_NAME, start)
        assert spin_until(executor, lambda: node.frames_published == N_FRAMES, timeout_s=20.0)
        assert starts == [0]  # started once, before the first frame
    finally:
        executor.shutdown()
        node.destroy_node()
        late.destroy_node()


def _services(prefix: str) -> list[str]:
    """Remap the phantom's stop client under ``prefix`` (peers per test). Its sweep
    action keeps its name: rclpy (Jazzy) does not resolve a remapped action name the
    same way in a client's readiness check, so each test's peer serves the default name
    and is gone before the next test."""
    return ["--ros-args", "-r", f"/usx/sweep/stop:={prefix}/stop"]


def _peers(ros_context, node, name: str, action: str, start):
    """Stand-ins for the phantom's peers: ``start`` answers goals of ``action`` (see
    ``serve_record_sweep``), and the joint-state and image streams have a reader each.
    Returns the peer node and an executor of both."""
    other = rclpy.create_node(name, context=ros_context)
    serve_record_sweep(other, action, start)
    other.create_subscription(JointState, "/lbr/joint_states", lambda m: None, STATE_QOS)
    other.create_subscription(Image, "/us/image", lambda m: None, SENSOR_QOS)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(other)
    return other, executor


def test_first_pass_waits_for_the_links_between_other_nodes(ros_context):
    """No pass starts before each link in wait_for_links has a publisher and a subscriber."""
    node = PhantomNode(
        context=ros_context,
        parameter_overrides=_overrides(
            loop=False,
            wait_for_links=["/link/pose"],
            connect_settle_s=0.2,
        ),
        cli_args=_services("/link"),
    )

    other, executor = _peers(
        ros_context, node, "link_nodes", ACTION_NAME, lambda goal: (True, "started")
    )
    try:
        assert spin_until(executor, lambda: node.ready, timeout_s=20.0)
        # Service and stream subscribers are there; the link has neither end.
        spin_until(executor, lambda: node.frames_published > 0, timeout_s=1.5)
        assert node.frames_published == 0
        other.create_publisher(JointState, "/link/pose", STATE_QOS)  # one end only
        spin_until(executor, lambda: node.frames_published > 0, timeout_s=1.0)
        assert node.frames_published == 0
        other.create_subscription(JointState, "/link/pose", lambda m: None, STATE_QOS)
        assert spin_until(executor, lambda: node.frames_published == N_FRAMES, timeout_s=20.0)
    finally:
        executor.shutdown()
        node.destroy_node()
        other.destroy_node()


@pytest.mark.parametrize(
    ("refusals", "service_wait_s", "calls", "gives_up"),
    [(3, 30.0, 4, False), (None, 0.5, None, True)],
    ids=["retried_until_accepted", "swept_anyway_after_service_wait"],
)
def test_a_refused_start_is_asked_again(ros_context, refusals, service_wait_s, calls, gives_up):
    """The start service refuses while its streams are not live; no frame goes out first."""
    node = PhantomNode(
        context=ros_context,
        parameter_overrides=_overrides(
            loop=False,
            service_wait_s=service_wait_s,
            start_retry_s=0.05,
        ),
        cli_args=_services("/refusing"),
    )
    frames_at_call = []

    ids = []

    def start(goal):
        frames_at_call.append(node.frames_published)
        ids.append(goal.sweep_id)
        ok = refusals is not None and len(frames_at_call) > refusals
        return ok, "sweep started" if ok else "no probe pose yet"

    other, executor = _peers(ros_context, node, "refusing_compounding", ACTION_NAME, start)
    try:
        assert spin_until(executor, lambda: node.frames_published == N_FRAMES, timeout_s=30.0)
        assert set(frames_at_call) == {0}, "a frame went out before the start was answered"
        assert len(set(ids)) == len(ids), "a refused goal's id was sent again"
        if calls is not None:
            assert len(frames_at_call) == calls and node.start_refusals == refusals
        else:  # ~0.5 s of refusals 0.05 s apart, then the sweep went ahead without it
            assert node.start_refusals == len(frames_at_call) >= 3
        assert node.idle_joint_states_published > 0
    finally:
        executor.shutdown()
        node.destroy_node()
        other.destroy_node()


def test_unreachable_placement_is_reported_and_nothing_streams(ros_context):
    node = PhantomNode(
        context=ros_context,
        parameter_overrides=_overrides(table_xyz_mm=[2500.0, 0.0, 0.0], publish_xray=False),
    )
    try:
        assert spin_until(node, lambda: node.error is not None, timeout_s=20.0)
        assert "sweep unreachable" in node.error and not node.ready
        spin_until(node, lambda: False, timeout_s=0.5)
        assert node.joint_states_published == node.frames_published == 0
    finally:
        node.destroy_node()


def test_close_right_after_start_waits_for_the_preparation(ros_context):
    """A graph that stops at start-up closes the phantom while it prepares its sweep: no
    preparation thread may be left in native code when the process exits."""
    import threading

    node = PhantomNode(context=ros_context, parameter_overrides=_overrides())
    try:
        assert not node.ready  # still preparing: the case under test
        node.close()
        assert not [t for t in threading.enumerate() if t.name == "phantom-prepare"]
        assert node.ready  # the preparation ran to its end
    finally:
        node.destroy_node()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"n_frames": 1}, "'n_frames': expected 0 or >= 2"),
        ({"verse_mask": "/no/such_seg-vert_msk.nii.gz"}, "'verse_mask' and 'verse_centroids'"),
        (
            {"verse_mask": "/no/mask.nii.gz", "verse_centroids": "/no/ctd.json"},
            "'verse_mask': no such file '/no/mask.nii.gz'",
        ),
        ({"probe_kind": "phased"}, "'probe_kind': expected one of"),
        ({"joint_rate_hz": 0.0}, "'joint_rate_hz'.*out of range"),
    ],
)
def test_invalid_parameter_fails_at_startup(ros_context, overrides, match):
    with pytest.raises(ParameterError, match=match):
        PhantomNode(context=ros_context, parameter_overrides=_overrides(**overrides))


def test_a_calibration_the_simulator_cannot_render_fails_at_startup(ros_context, tmp_path):
    path = write_probe_calibration(tmp_path / "probe.yaml", 60.0 / SIZE, 2 * SIZE)
    with pytest.raises(ParameterError, match=r"'probe_calibration': .*face centre of a 128-col"):
        PhantomNode(context=ros_context, parameter_overrides=_overrides(probe_calibration=path))
