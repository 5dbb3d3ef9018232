"""completion node in-process: phantom observations in -> completed spine out; bad inputs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from usx_model.base.transforms import apply_transform, make_transform
from usx_model.base.xray_geometry import transform_geometry
from usx_model.completion.xray_placement import XrayObservation, place_xray
from usx_model.network.config import tiny_config
from usx_model.network.model import USXComplete
from usx_model.network.weights import save_weights
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import lateral_geometry, render_lateral_xray
from usx_msgs.msg import (
    SpineCompletion,
    SweepCloud,
    SweepPoints,
    SweepReport,
    VertebraCompletion,
)
from usx_msgs.srv import CompleteSpine
from usx_ros.conversions import cloud_to_array, ns_to_stamp, points_mm_to_cloud
from usx_ros.nodes.completion import CompletionNode
from usx_ros.params import ParameterError
from usx_ros.qos import LIVE_QOS, RESULT_QOS
from usx_ros.testing import spin_until

pytestmark = pytest.mark.ros

# Patient prone, head towards base +y, back towards +z (the phantom's default set-up):
# spine L -> -x, P -> +z, S -> +y.
#: the sweep id of the tests' bone and X-ray points and reports, unless they say otherwise
SWEEP = "sweep-1"
T_BASE_SPINE = make_transform(
    np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]).T, [600.0, 0.0, 100.0]
)


@pytest.fixture(scope="module")
def observations():
    spine = generate_spine(4321)
    partials = simulate_us_partials(spine, seed=1)
    bone = np.unique(np.round(np.concatenate([p.points_mm for p in partials.values()]), 1), axis=0)
    geometry = lateral_geometry(spine)
    shot = render_lateral_xray(spine, geometry)
    bone_base = apply_transform(T_BASE_SPINE, bone)
    obs = XrayObservation(shot.label.astype(int), transform_geometry(geometry, T_BASE_SPINE))
    return bone_base, place_xray(bone_base, obs)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("weights")
    paths = {}
    for variant in ("full", "us_only"):
        torch_seed = 0
        import torch

        torch.manual_seed(torch_seed)
        model = USXComplete(tiny_config(variant))
        paths[variant] = out / f"{variant}.pt"
        save_weights(model, paths[variant])
    return paths


def _params(weights, **extra):
    params = [
        Parameter("weights_full", value=str(weights["full"])),
        Parameter("weights_us_only", value=str(weights["us_only"])),
        Parameter("n_samples", value=1),
    ]
    return params + [Parameter(k, value=v) for k, v in extra.items()]


class Graph:
    def __init__(self, ctx, tester, weights, active=True, **extra):
        """``active=False``: the node only configured, as a lifecycle manager leaves it."""
        overrides = _params(weights, **extra) + [Parameter("autostart", value=active)]
        self.node = CompletionNode(context=ctx, parameter_overrides=overrides)
        if not active:
            self.node.trigger_configure()
        self.tester = tester
        self.clouds: list[PointCloud2] = []
        self.results: list[SpineCompletion] = []
        tester.create_subscription(
            PointCloud2, "/usx/completed_spine", self.clouds.append, RESULT_QOS
        )
        tester.create_subscription(
            SpineCompletion, "/usx/spine_completion", self.results.append, RESULT_QOS
        )
        self.bone_pub = tester.create_publisher(SweepCloud, "/usx/sweep/bone_points", RESULT_QOS)
        self._xray_pub = None  # made on first use: its existence tells a placer is there
        self.report_pub = tester.create_publisher(SweepReport, "/usx/sweep_report", RESULT_QOS)
        self.live_pub = tester.create_publisher(SweepPoints, "/usx/sweep/live_points", LIVE_QOS)
        self.client = tester.create_client(CompleteSpine, "/usx/complete_spine")
        self.ex = SingleThreadedExecutor(context=ctx)
        self.ex.add_node(self.node)
        self.ex.add_node(tester)
        assert spin_until(self.ex, lambda: self.bone_pub.get_subscription_count() > 0, 5.0)

    def publish_xray(self, by_level, sweep_id=SWEEP, final=True):
        levels = sorted(by_level)
        pts = np.concatenate([by_level[lv] for lv in levels])
        lv = np.concatenate([np.full(len(by_level[v]), v, np.uint8) for v in levels])
        self.publish_cloud(self.xray_pub, pts, sweep_id, final=final, level=lv)
        assert spin_until(self.ex, lambda: self.node._xray is not None, 5.0)

    @property
    def xray_pub(self):
        """The stand-in for xray_ingest: once it exists, completion waits for its answer."""
        if self._xray_pub is None:
            self._xray_pub = self.tester.create_publisher(
                SweepCloud, "/usx/sweep/xray_points", RESULT_QOS
            )
            assert spin_until(self.ex, self.node._xray_placer_exists, 5.0)
        return self._xray_pub

    def answer_no_xray(self, sweep_id=SWEEP):
        """What xray_ingest sends for a sweep it cannot place an X-ray on."""
        self.publish_cloud(self.xray_pub, np.zeros((0, 3)), sweep_id, level=np.zeros(0, np.uint8))

    def publish_report(
        self,
        expected,
        placed,
        no_contact,
        lost,
        fraction=None,
        sweep_end_ns=0,
        sweep_id=SWEEP,
    ):
        header = Header(frame_id="lbr_link_0")
        self.report_pub.publish(
            SweepReport(
                header=header,
                sweep_id=sweep_id,
                sweep_end=ns_to_stamp(sweep_end_ns),
                frames_expected=expected,
                frames_placed=placed,
                frames_no_contact=no_contact,
                frames_lost=lost,
                lost_fraction=lost / expected if fraction is None else fraction,
            )
        )

        def seen() -> int:
            return self.node.health.accepted + self.node.health.dropped

        n = seen()
        assert spin_until(self.ex, lambda: seen() > n, 5.0)

    def publish_live(self, sweep_id, pts_mm, cov, covered_from=0.5, **fields):
        header = Header(frame_id="lbr_link_0")
        msg = SweepPoints(
            header=header,
            sweep_id=sweep_id,
            levels=[f"L{lv}" for lv in range(1, 6)],
            coverage=list(cov),
            covered=[c >= covered_from for c in cov],
            cloud=points_mm_to_cloud(pts_mm, header),
        )
        for k, v in fields.items():
            setattr(msg, k, v)
        assert spin_until(self.ex, lambda: self.live_pub.get_subscription_count() > 0, 5.0)
        self.live_pub.publish(msg)

    def publish_bone(self, pts_mm, frame="lbr_link_0", sweep_id=SWEEP):
        self.publish_cloud(self.bone_pub, pts_mm, sweep_id, frame)

    @staticmethod
    def publish_cloud(pub, pts_mm, sweep_id, frame="lbr_link_0", final=True, **fields):
        header = Header(frame_id=frame, stamp=ns_to_stamp(1))
        cloud = points_mm_to_cloud(pts_mm, header, fields or None)
        pub.publish(SweepCloud(header=header, sweep_id=sweep_id, cloud=cloud, final=final))

    def close(self):
        if self._xray_pub is not None:  # the tester outlives this graph
            self.tester.destroy_publisher(self._xray_pub)
        self.ex.shutdown()
        self.node.destroy_node()


@pytest.fixture
def graph(ros_context, ros_node, weights):
    g = Graph(ros_context, ros_node, weights)
    yield g
    g.close()


@pytest.fixture
def shipped_graph(ros_context, ros_node):
    """The completion node with the shipped weights ('' = shipped): a trained model, so
    the quality gate has a real completion to judge."""
    g = Graph(ros_context, ros_node, {"full": "", "us_only": ""})
    yield g
    g.close()


def test_auto_completion_with_xray(shipped_graph, observations, ros_context):
    graph = shipped_graph
    bone, xray_points = observations
    graph.publish_xray(xray_points)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.clouds and graph.results, timeout_s=60.0)
    cloud = graph.clouds[-1]
    assert cloud.header.frame_id == "lbr_link_0"
    arr = cloud_to_array(cloud)
    assert arr.dtype.names == ("x", "y", "z", "level", "uncertainty", "rgb", "status")
    assert set(np.unique(arr["level"])) == {1, 2, 3, 4, 5}
    assert np.abs(arr["x"]).max() < 3.0  # metres
    msg = graph.results[-1]
    assert [v.level for v in msg.vertebrae] == ["L1", "L2", "L3", "L4", "L5"]
    for v in msg.vertebrae:
        assert v.used_xray and v.status == VertebraCompletion.STATUS_OK, v.status_message
        assert 0.5 <= v.confidence <= 1.0
    assert set(np.unique(arr["status"])) == {VertebraCompletion.STATUS_OK}
    assert msg.model_id.startswith("full@")
    # A subscriber that joins late still receives the (transient-local) result.
    late_node = __import__("rclpy").create_node("late_joiner", context=ros_context)
    late: list[PointCloud2] = []
    late_node.create_subscription(PointCloud2, "/usx/completed_spine", late.append, RESULT_QOS)
    graph.ex.add_node(late_node)
    try:
        assert spin_until(graph.ex, lambda: late, timeout_s=5.0)
    finally:
        graph.ex.remove_node(late_node)
        late_node.destroy_node()


def test_xray_placed_too_deep_is_never_published_ok(shipped_graph, observations):
    # Every level's X-ray points placed 20 mm too far anterior (a wrong depth of the
    # placement plane): the network still returns five vertebrae; the gate must not
    # call any of them ok. (A whole X-ray shifted by one level moves the level split
    # with it: that is a consistent relabelling the gate cannot see.)
    graph = shipped_graph
    bone, xray_points = observations
    anterior = T_BASE_SPINE[:3, :3] @ np.array([0.0, -20.0, 0.0])  # spine frame -P, mm
    graph.publish_xray({lv: p + anterior for lv, p in xray_points.items()})
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    vertebrae = graph.results[-1].vertebrae
    assert len(vertebrae) == 5
    for v in vertebrae:
        assert v.status in (
            VertebraCompletion.STATUS_INSUFFICIENT_XRAY,
            VertebraCompletion.STATUS_LOW_CONFIDENCE,
            VertebraCompletion.STATUS_INSUFFICIENT_US,
        ), (v.level, v.status, v.status_message)
        assert v.confidence < 0.5 and v.status_message.startswith(v.level)
    status_field = cloud_to_array(graph.clouds[-1])["status"]
    assert VertebraCompletion.STATUS_OK not in set(np.unique(status_field).tolist())


def test_a_sweep_that_lost_frames_publishes_no_usable_level(shipped_graph, observations):
    # The bone points of a sweep that lost 40 % of its frames still complete every level
    # (the gate, which sees only points, would pass them): none may be usable.
    graph = shipped_graph
    bone, xray_points = observations
    graph.publish_report(expected=1520, placed=900, no_contact=12, lost=608)
    graph.publish_xray(xray_points)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    for v in graph.results[-1].vertebrae:
        assert v.status == VertebraCompletion.STATUS_INSUFFICIENT_US, (v.level, v.status)
        assert v.status_message.startswith("the sweep lost 40.0 % of its frames"), v.status_message
    status_field = cloud_to_array(graph.clouds[-1])["status"]
    assert set(np.unique(status_field).tolist()) == {VertebraCompletion.STATUS_INSUFFICIENT_US}


def test_latency_counts_from_the_sweeps_stop(graph, observations):
    # the bone points were held up 3 s after the stop (a slow stage, a large cloud):
    # the published latency says so
    bone, _ = observations
    now_ns = graph.node.get_clock().now().nanoseconds
    graph.publish_report(1000, 1000, 0, 0, sweep_end_ns=now_ns - 3 * 10**9)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    latency = graph.results[-1].latency
    seconds = latency.sec + latency.nanosec * 1e-9
    assert 3.0 <= seconds < 3.0 + 60.0
    assert seconds >= graph.node.last_latency_s + 2.9  # the node's own time is shorter


def test_a_report_of_another_sweep_or_within_bounds_changes_nothing(shipped_graph, observations):
    graph = shipped_graph
    bone, xray_points = observations
    graph.publish_report(expected=1520, placed=900, no_contact=12, lost=608, sweep_id="other")
    graph.publish_report(expected=1520, placed=1500, no_contact=10, lost=10)
    graph.publish_xray(xray_points)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert all(v.status == VertebraCompletion.STATUS_OK for v in graph.results[-1].vertebrae)


@pytest.mark.parametrize(
    ("counts", "fraction", "message"),
    [
        ((100, 50, 0, 10), None, "expected placed + no_contact + lost == expected"),
        ((100, 90, 0, 10), 0.5, "expected lost_fraction 0.1000 (frames_lost / frames_expected)"),
    ],
)
def test_an_inconsistent_sweep_report_is_counted(graph, counts, fraction, message) -> None:
    graph.publish_report(*counts, fraction=fraction)
    assert graph.node.health.counts["invalid_sweep_report"] == 1
    assert message in graph.node.health.last_detail["invalid_sweep_report"]
    assert not graph.node._reports


def test_without_xray_every_level_falls_back_to_us_only(shipped_graph, observations):
    graph = shipped_graph
    bone, _ = observations
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    vertebrae = graph.results[-1].vertebrae
    assert vertebrae and all(
        v.status == VertebraCompletion.STATUS_US_ONLY_FALLBACK
        and not v.used_xray
        and "US-only" in v.status_message
        for v in vertebrae
    )


def _spin_for(ex, seconds: float) -> None:
    """Spin the executor for a bounded time (the node must act, or not act, within it)."""
    deadline = time.monotonic() + seconds
    spin_until(ex, lambda: time.monotonic() > deadline, timeout_s=seconds + 5.0)


@pytest.fixture
def make_graph(ros_context, ros_node, weights):
    made = []

    def make(**params):
        made.append(Graph(ros_context, ros_node, weights, **params))
        return made[-1]

    yield make
    for g in made:
        g.close()


def test_a_sweep_that_ended_before_the_node_was_active_is_completed_on_activation(
    ros_context, ros_node, weights, observations
):
    """A lifecycle manager activates completion after loading its models; a short sweep
    can be over by then. Its bone points and X-ray points are latched (transient-local):
    delivered once, while the node was inactive, and kept for its activation."""
    graph = Graph(ros_context, ros_node, weights, active=False)
    try:
        bone, xray_points = observations
        levels = sorted(xray_points)
        pts = np.concatenate([xray_points[lv] for lv in levels])
        lv = np.concatenate([np.full(len(xray_points[v]), v, np.uint8) for v in levels])
        graph.publish_cloud(graph.xray_pub, pts, SWEEP, level=lv)
        graph.publish_bone(bone)
        _spin_for(graph.ex, 1.0)
        assert graph.node.lifecycle_state == "inactive" and not graph.results
        graph.node.trigger_activate()
        assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
        assert all(v.used_xray for v in graph.results[-1].vertebrae)
    finally:
        graph.close()


def test_with_a_placer_the_final_completion_waits_for_its_answer(make_graph, observations):
    graph = make_graph(xray_answer_timeout_s=30.0)
    bone, xray_points = observations
    assert graph.xray_pub  # a placer in the graph
    graph.publish_bone(bone)
    _spin_for(graph.ex, 1.0)
    assert not graph.results
    # while it waits, what needs no X-ray is made from the bone points
    node = graph.node
    assert node._prepared is not None and node._prepared.source is node._bone_mm
    graph.publish_xray(xray_points)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert all(v.used_xray for v in graph.results[-1].vertebrae)
    assert node._prepared is None  # used once
    # and the result is the completion of the same inputs made in one go
    offline = node.completer.complete(node._bone_mm, node._prior(), node._xray)
    np.testing.assert_array_equal(node.last_result.point_level, offline.point_level)
    for a, b in zip(node.last_result.levels, offline.levels, strict=True):
        np.testing.assert_array_equal(a.points_mm, b.points_mm)


@pytest.mark.parametrize("placer", ["answers_none", "absent"])
def test_no_xray_points_complete_at_once_with_the_us_only_model(make_graph, observations, placer):
    """The placer's empty answer, or no placer at all, ends the wait (no timer)."""
    graph = make_graph(xray_answer_timeout_s=60.0)
    bone, _ = observations
    if placer == "answers_none":
        graph.answer_no_xray()
    t0 = time.monotonic()
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert time.monotonic() - t0 < 30.0  # not the 60 s timeout
    assert not any(v.used_xray for v in graph.results[-1].vertebrae)
    assert graph.node.health.counts["invalid_xray_points"] == 0


def test_xray_points_of_another_sweep_are_not_this_sweeps(make_graph, observations):
    """The join is on the sweep id: an earlier sweep's placement, or this sweep's live one
    (on its points so far), does not start this sweep's final completion; its own final
    placement does (stamps play no part: every cloud here has the same)."""
    graph = make_graph(xray_answer_timeout_s=30.0, live_completion=False)
    bone, xray_points = observations
    graph.publish_xray(xray_points, sweep_id="the-sweep-before")
    graph.publish_xray(xray_points, sweep_id="this-sweep", final=False)
    graph.publish_bone(bone, sweep_id="this-sweep")
    _spin_for(graph.ex, 0.5)
    assert not graph.results
    graph.publish_xray(xray_points, sweep_id="this-sweep")
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert graph.results[-1].sweep_id == "this-sweep"
    assert all(v.used_xray for v in graph.results[-1].vertebrae)


def test_a_placer_that_never_answers_times_out_to_the_us_only_model(make_graph, observations):
    graph = make_graph(xray_answer_timeout_s=0.5)
    bone, _ = observations
    assert graph.xray_pub  # a placer in the graph, silent
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert not any(v.used_xray for v in graph.results[-1].vertebrae)


def test_service_selects_levels(graph, observations):
    bone, xray_points = observations
    assert graph.node.set_parameters([Parameter("auto_complete", value=False)])[0].successful
    assert graph.node.params.auto_complete is False
    graph.publish_xray(xray_points)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.node._bone_mm is not None, 5.0)
    future = graph.client.call_async(CompleteSpine.Request(levels=["L2", "l3"], use_xray=False))
    assert spin_until(graph.ex, future.done, timeout_s=60.0)
    resp = future.result()
    assert resp.success, resp.message
    assert [v.level for v in resp.completion.vertebrae] == ["L2", "L3"]
    assert not any(v.used_xray for v in resp.completion.vertebrae)
    bad = graph.client.call_async(CompleteSpine.Request(levels=["T12"]))
    assert spin_until(graph.ex, bad.done, timeout_s=5.0)
    assert not bad.result().success and "L1..L5" in bad.result().message


def _cloud_without_z(pts):
    arr = np.zeros(len(pts), dtype=[("x", "<f4"), ("y", "<f4")])
    from usx_ros.conversions import array_to_cloud

    return array_to_cloud(arr, Header(frame_id="lbr_link_0"))


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda pts: _cloud_without_z(pts), "invalid_cloud"),
        (
            lambda pts: points_mm_to_cloud(
                np.where(pts == pts[0], np.nan, pts), Header(frame_id="lbr_link_0")
            ),
            "invalid_cloud",
        ),
        (
            lambda pts: points_mm_to_cloud(np.zeros((0, 3)), Header(frame_id="lbr_link_0")),
            "invalid_cloud",
        ),
        (lambda pts: points_mm_to_cloud(pts, Header(frame_id="map")), "wrong_frame"),
    ],
)
def test_bad_clouds_are_counted_and_the_node_keeps_serving(graph, observations, make, reason):
    bone, _ = observations
    cloud = make(bone)
    graph.bone_pub.publish(SweepCloud(header=cloud.header, sweep_id=SWEEP, cloud=cloud))
    assert spin_until(graph.ex, lambda: graph.node.health.counts[reason] == 1, 5.0)
    graph.publish_bone(bone)
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)


@pytest.mark.parametrize("topic", ["bone", "xray"])
def test_a_cloud_over_max_points_is_rejected_before_it_is_decoded(
    ros_context, ros_node, weights, observations, topic
):
    bone, _ = observations
    g = Graph(ros_context, ros_node, weights, max_points=len(bone) - 1)
    try:
        if topic == "bone":
            g.publish_bone(bone)
        else:
            big = np.concatenate([bone, bone])
            g.publish_cloud(g.xray_pub, big, SWEEP, level=np.ones(len(big), np.uint8))
        assert spin_until(g.ex, lambda: g.node.health.counts["too_many_points"] == 1, 5.0)
        assert g.node._bone_mm is None and g.node._xray is None
        g.publish_bone(bone[::2])  # within the limit: the node keeps serving
        assert spin_until(g.ex, lambda: g.results, timeout_s=60.0)
    finally:
        g.close()


def test_xray_points_with_bad_levels_are_rejected(graph, observations):
    _, xray_points = observations
    pts = xray_points[1]
    graph.publish_cloud(graph.xray_pub, pts, SWEEP, level=np.full(len(pts), 9, np.uint8))
    assert spin_until(graph.ex, lambda: graph.node.health.counts["invalid_xray_points"] == 1, 5.0)
    assert graph.node._xray is None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.unlink(), "weights_full"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "weights_full"),
    ],
)
def test_missing_or_corrupt_weights_fail_at_startup(
    ros_context, weights, tmp_path, damage, message
):
    bad = tmp_path / "full.pt"
    bad.write_bytes(weights["full"].read_bytes())
    (tmp_path / "full.pt.json").write_bytes(weights["full"].with_name("full.pt.json").read_bytes())
    damage(bad)
    with pytest.raises(ParameterError, match=message):
        CompletionNode(
            context=ros_context,
            parameter_overrides=[
                Parameter("weights_full", value=str(bad)),
                Parameter("weights_us_only", value=str(weights["us_only"])),
            ],
        )


def test_live_points_grow_the_spine_until_the_final_completion_replaces_it(
    make_graph, observations
):
    graph = make_graph(live_min_period_s=0.0)
    bone, xray_points = observations
    graph.publish_xray(xray_points)
    graph.publish_live("s1", bone, [0.0, 0.6, 0.2, 0.0, 0.0])
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    first = graph.results[-1]
    assert (first.sweep_id, first.final) == ("s1", False)
    assert [v.level for v in first.vertebrae] == ["L2"]
    assert first.vertebrae[0].used_xray  # the X-ray placed before the sweep ended
    # L3 newly covered: completed; L2 did not grow: kept as it was
    graph.publish_live("s1", bone, [0.0, 0.65, 0.7, 0.0, 0.0])
    assert spin_until(graph.ex, lambda: len(graph.results) >= 2, timeout_s=60.0)
    assert [v.level for v in graph.results[-1].vertebrae] == ["L2", "L3"]
    assert bytes(graph.results[-1].vertebrae[0].cloud.data) == bytes(first.vertebrae[0].cloud.data)
    # the sweep ends: its final completion of every level, offline-equal by construction
    graph.publish_report(100, 100, 0, 0, sweep_id="s1")
    graph.publish_xray(xray_points, sweep_id="s1")
    graph.publish_bone(bone, sweep_id="s1")
    assert spin_until(graph.ex, lambda: graph.results[-1].final, timeout_s=60.0)
    final = graph.results[-1]
    assert final.sweep_id == "s1" and len(final.vertebrae) == 5
    n = len(graph.results)
    # late live points of the finished sweep complete nothing; the next sweep's do
    graph.publish_live("s1", bone, [1.0] * 5)
    graph.publish_live("s2", bone, [0.0, 0.0, 0.0, 0.9, 0.0])
    assert spin_until(graph.ex, lambda: len(graph.results) > n, timeout_s=60.0)
    assert len(graph.results) == n + 1
    assert graph.results[-1].sweep_id == "s2"
    assert [v.level for v in graph.results[-1].vertebrae] == ["L4"]
    assert graph.node.live_completions == 3 and graph.node.completions == 1


def test_a_stopped_sweeps_closing_points_complete_nothing(make_graph, observations):
    """They are for the X-ray placement while us_compounding fits the breathing; the final
    bone points follow."""
    graph = make_graph(live_min_period_s=0.0)
    bone, xray_points = observations
    graph.publish_xray(xray_points)
    graph.publish_live("s1", bone, [1.0] * 5, closing=True)
    spin_until(graph.ex, lambda: False, timeout_s=1.0)  # bounded: give a completion a chance
    assert not graph.results and graph.node.live_completions == 0
    graph.publish_live("s1", bone, [0.0, 0.9, 0.0, 0.0, 0.0])  # the same, as live points
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    assert graph.node.live_completions == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"levels": ["L1", "L2"]}, "invalid_live_points"),
        ({"coverage": [0.0, 2.0, 0.0, 0.0, 0.0]}, "invalid_live_points"),
        ({"header": Header(frame_id="map")}, "wrong_frame"),
    ],
)
def test_bad_live_points_are_counted_and_complete_nothing(graph, observations, fields, reason):
    bone, _ = observations
    graph.publish_live("s1", bone, [0.0, 0.9, 0.0, 0.0, 0.0], **fields)
    assert spin_until(graph.ex, lambda: graph.node.health.counts.get(reason, 0) == 1, 5.0)
    assert not graph.results and graph.node.live_completions == 0


def test_a_discarded_sweep_withdraws_its_live_spine(make_graph, observations):
    graph = make_graph(live_min_period_s=0.0)
    bone, xray_points = observations
    graph.publish_xray(xray_points)
    # without an earlier final completion: an empty spine replaces the live one
    graph.publish_live("gone", bone, [0.0, 0.9, 0.0, 0.0, 0.0])
    assert spin_until(graph.ex, lambda: graph.results, timeout_s=60.0)
    graph.publish_live("gone", np.zeros((0, 3)), [0.0] * 5, discarded=True)
    assert spin_until(graph.ex, lambda: graph.results[-1].final, timeout_s=10.0)
    assert graph.results[-1].sweep_id == "gone" and not graph.results[-1].vertebrae
    assert graph.clouds[-1].width == 0
    # with one: the last final completion stands again
    graph.publish_report(100, 100, 0, 0, sweep_id="kept")
    graph.publish_xray(xray_points, sweep_id="kept")
    graph.publish_bone(bone, sweep_id="kept")
    assert spin_until(graph.ex, lambda: graph.results[-1].sweep_id == "kept", timeout_s=60.0)
    kept = graph.results[-1]
    graph.publish_live("gone2", bone, [0.0, 0.0, 0.9, 0.0, 0.0])
    assert spin_until(graph.ex, lambda: graph.results[-1].sweep_id == "gone2", timeout_s=60.0)
    graph.publish_live("gone2", np.zeros((0, 3)), [0.0] * 5, discarded=True)
    assert spin_until(graph.ex, lambda: graph.results[-1].sweep_id == "kept", timeout_s=10.0)
    assert graph.results[-1].final and len(graph.results[-1].vertebrae) == 5
    assert bytes(graph.results[-1].vertebrae[0].cloud.data) == bytes(kept.vertebrae[0].cloud.data)
    # a void sweep's late live points complete nothing
    n = len(graph.results)
    graph.publish_live("gone2", bone, [1.0] * 5)
    graph.publish_live("next", bone, [0.0, 0.0, 0.0, 0.9, 0.0])
    assert spin_until(graph.ex, lambda: len(graph.results) > n, timeout_s=60.0)
    assert [r.sweep_id for r in graph.results[n:]] == ["next"]
