"""The RecordSweep action of us_compounding: the core sweep protocol behind rclpy actions.

``/usx/sweep/record`` (``usx_msgs/action/RecordSweep``). The protocol's states and
refusals live in ``usx_model.compounding.sweep_protocol``; this module only turns goals,
cancels and the graph into its calls and its answers into results and feedback:

- a goal is accepted while the node is active (rejected otherwise, as ROS does) and then
  either starts the sweep or is aborted at once with the protocol's reason in the result
  (``outcome: refused``): a ROS rejection carries no reason, and a robot program needs it;
- feedback goes out every ``feedback_period_s`` and once as the sweep starts (a client
  may begin moving the probe on it), with each level's coverage once an X-ray has given
  the level bands (``usx_model.levels.coverage``), also drawn as RViz markers on
  ``/usx/sweep/coverage_markers`` (a box per level, red to green, and its percentage);
- the result lists each level's final coverage and says which stayed below
  ``min_level_coverage``;
- the sweep ends after the goal's ``duration_s`` or on ``/usx/sweep/stop``; the result
  follows once the sweep has closed and its bone points are out (``report.sweep_id`` and
  the published ``/usx/sweep_report`` carry the goal's id);
- cancel, a client that vanishes (no subscriber left on the action's feedback for
  ``client_lost_s``), ``/usx/sweep/reset`` or deactivating the node discard the sweep: nothing
  is published for it, so no completion follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future
from visualization_msgs.msg import Marker, MarkerArray

from usx_model.compounding.sweep_protocol import Ended, Outcome, SweepGoal, SweepProtocol
from usx_model.levels.coverage import LevelBands, LevelCoverage, covered
from usx_msgs.action import RecordSweep
from usx_msgs.msg import SweepReport
from usx_ros.conversions import mm_to_m, transform_mm_to_pose
from usx_ros.qos import RESULT_QOS

#: The action's default name.
ACTION_NAME = "/usx/sweep/record"
#: Where the coverage markers go (MarkerArray, base frame).
MARKERS_TOPIC = "/usx/sweep/coverage_markers"


def coverage_markers(
    coverage: LevelCoverage, fractions: dict[int, float], min_coverage: float, frame_id: str
) -> MarkerArray:
    """One flat box per level over its expected surface (red: unseen .. green: covered)
    and a label with its percentage."""
    done = covered(fractions, min_coverage)
    out = MarkerArray()
    out.markers.append(Marker(ns="usx_coverage", action=Marker.DELETEALL))
    for lv, frac in fractions.items():
        T, size_mm = coverage.box(lv)
        for kind, mid in ((Marker.CUBE, 2 * lv), (Marker.TEXT_VIEW_FACING, 2 * lv + 1)):
            m = Marker(ns="usx_coverage", id=mid, type=kind, action=Marker.ADD)
            m.header.frame_id = frame_id
            m.pose = transform_mm_to_pose(T)
            if kind == Marker.CUBE:
                m.scale.x, m.scale.y, m.scale.z = (float(v) for v in mm_to_m(size_mm))
                m.color.r, m.color.g, m.color.a = 1.0 - frac, frac, 0.35
            else:
                m.scale.z = 0.012
                m.color.r = m.color.g = m.color.b = m.color.a = 1.0
                m.text = f"L{lv} {100 * frac:.0f} %" + (" ok" if done[lv] else "")
            out.markers.append(m)
    return out


def feedback_msg(fb: dict) -> RecordSweep.Feedback:
    """The protocol's feedback dict as the action's feedback message."""
    msg = RecordSweep.Feedback(
        sweep_id=fb["sweep_id"],
        state=fb["state"],
        elapsed_s=float(fb["elapsed_s"]),
        frames_placed=int(fb["frames_placed"]),
        frames_dropped=int(sum(fb["drops"].values())),
        drop_reasons=list(fb["drops"]),
        drop_counts=[int(v) for v in fb["drops"].values()],
        probe_speed_mm_s=float(fb["probe_speed_mm_s"]),
        frame_spacing_mm=float(fb["frame_spacing_mm"]),
        warnings=list(fb["warnings"]),
    )
    cov = fb.get("coverage", {})
    msg.levels = [f"L{lv}" for lv in cov]
    msg.coverage = [float(v) for v in cov.values()]
    msg.covered = list(covered(cov, fb["min_coverage"]).values())
    return msg


class SweepActionServer:
    """Serves RecordSweep for a node that owns a ``SweepSession``.

    Args:
        node: the (managed) node; its ``is_active`` gates goals.
        protocol: the sweep protocol state.
        start: starts the node's sweep (returns its message).
        stop: stops it (it closes later; the node then calls :meth:`closed`).
        discard: discards the sweep, active or closing, unpublished.
        not_ready: why a sweep started now would lose its first frames (None: it would not).
        busy: why a sweep runs that no goal started (the start service), else None.
        bands: the level bands of the latest X-ray (None before one).
        points_since: ``BoneSweep.points_since`` of the current sweep.
        on_coverage: called after each coverage update of a goal's sweep with the sweep
            id, each level's coverage, whether it is covered and its bone points so far
            (the node's live points).
        feedback_period_s, client_lost_s, min_coverage: see the node's parameters.
        frame_id: the base frame (markers).
    """

    def __init__(
        self,
        node,
        protocol: SweepProtocol,
        *,
        start: Callable[[], str],
        stop: Callable[[], str],
        discard: Callable[[], str],
        not_ready: Callable[[], str | None],
        busy: Callable[[], str | None],
        bands: Callable[[], LevelBands | None] = lambda: None,
        points_since: Callable[[int], tuple[np.ndarray, int]] | None = None,
        on_coverage: Callable[[str, dict, dict, dict], None] | None = None,
        feedback_period_s: float = 0.2,
        client_lost_s: float = 1.0,
        min_coverage: float = 0.5,
        frame_id: str = "lbr_link_0",
    ) -> None:
        self.node = node
        self.protocol = protocol
        self._start, self._stop, self._discard = start, stop, discard
        self._not_ready, self._busy = not_ready, busy
        self.client_lost_s = client_lost_s
        self._bands, self._points_since = bands, points_since
        self._on_coverage = on_coverage
        self.min_coverage, self.frame_id = min_coverage, frame_id
        self.coverage: LevelCoverage | None = None
        self._chunk = 0
        self._pub_markers = node.create_publisher(MarkerArray, MARKERS_TOPIC, RESULT_QOS)
        self._handle = None
        self._done: Future | None = None
        self._no_client_since: float | None = None
        self.refusals = 0
        self._server = ActionServer(
            node,
            RecordSweep,
            ACTION_NAME,
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
        )
        # where the clients read the feedback, after remapping
        self._feedback_topic = node.resolve_topic_name(f"{ACTION_NAME}/_action/feedback")
        self._timer = node.create_timer(feedback_period_s, self._on_feedback_tick)

    # --- what the node calls ------------------------------------------------------------
    @property
    def sweep_id(self) -> str:
        """The running goal's sweep id ('' when no goal runs)."""
        goal = self.protocol.goal
        return "" if goal is None else goal.sweep_id

    def poll(self, now_s: float) -> None:
        """Stop a goal's sweep that reached its duration (the node's stop timer)."""
        if self.protocol.stop_due(now_s):
            self.node.get_logger().info(
                f"sweep {self.sweep_id!r}: {self.protocol.goal.duration_s:g} s reached"
            )
            self._stop()  # the node calls stopped()

    def stopped(self) -> None:
        """The node stopped the sweep (the stop service): a goal's sweep is closing."""
        if self.protocol.state == "recording":
            self.protocol.stopping()

    def frames(self, reports) -> None:
        """Settled frames of the current sweep (``FrameReport``)."""
        for r in reports:
            self.protocol.frame(r)

    def closed(self, report: SweepReport, bone_points: int) -> None:
        """The sweep closed and its results went out: the goal succeeds."""
        if self.protocol.state != "closing":
            return
        fractions = self._update_coverage()
        wanted = self.protocol.goal.levels or tuple(f"L{lv}" for lv in fractions)
        done = covered(fractions, self.min_coverage)
        short = [
            f"L{lv} {f:.2f}" for lv, f in fractions.items() if not done[lv] and f"L{lv}" in wanted
        ]
        note = f"; below {self.min_coverage:g} coverage: {', '.join(short)}" if short else ""
        ended = self.protocol.closed(
            f"sweep {self.sweep_id!r}: {report.frames_placed} frames placed, "
            f"{bone_points} bone points{note}"
        )
        self._resolve(ended, report, bone_points, fractions)

    def abort(self, reason: str) -> None:
        """Discard a goal's sweep unpublished (reset, deactivation, shutdown)."""
        ended = self.protocol.abort(reason)
        if ended is not None:
            self._discard()
            self._resolve(ended)

    def destroy(self) -> None:
        self.abort("us_compounding shut down")
        self._server.destroy()

    # --- action callbacks ---------------------------------------------------------------
    def _on_goal(self, request) -> GoalResponse:
        if not self.node.is_active:
            self.node._refused(f"RecordSweep goal {request.sweep_id!r}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, handle) -> CancelResponse:
        if handle is not self._handle:
            return CancelResponse.REJECT  # finished already, or refused
        ended = self.protocol.cancel()
        self._discard()
        self._resolve(ended)
        return CancelResponse.ACCEPT

    async def _execute(self, handle) -> RecordSweep.Result:
        req = handle.request
        goal = SweepGoal(req.sweep_id, tuple(req.levels), float(req.duration_s))
        reason = self._busy() if self.protocol.goal is None else None
        if reason is None:
            # asked only when the goal is otherwise fine: the streams' state is no reason
            # to refuse a malformed goal
            ready = self._not_ready() if self.protocol.check(goal) is None else None
            reason = self.protocol.begin(goal, time.monotonic(), ready)
        if reason is not None:
            self.refusals += 1
            self.node.get_logger().warning(f"RecordSweep refused: {reason}")
            handle.abort()
            return RecordSweep.Result(success=False, outcome=str(Outcome.REFUSED), message=reason)
        self._handle, self._done = handle, Future()
        self._no_client_since = None
        self.coverage, self._chunk = None, 0
        self.node.get_logger().info(f"sweep {goal.sweep_id!r} started: {self._start()}")
        self._publish_feedback()
        ended, report, bone_points, fractions = await self._done
        result = RecordSweep.Result(
            success=ended.outcome is Outcome.SUCCEEDED,
            outcome=str(ended.outcome),
            message=ended.message,
            bone_points=bone_points,
            levels=[f"L{lv}" for lv in fractions],
            coverage=[float(v) for v in fractions.values()],
        )
        if report is not None:
            result.report = report
        if ended.outcome is Outcome.SUCCEEDED:
            handle.succeed()
        elif ended.outcome is Outcome.CANCELLED:
            handle.canceled()
        else:
            handle.abort()
        self.node.get_logger().info(ended.message)
        return result

    # --- internals ----------------------------------------------------------------------
    def _resolve(
        self, ended: Ended, report: SweepReport | None = None, n: int = 0, fractions=None
    ) -> None:
        done, self._done, self._handle = self._done, None, None
        if done is not None and not done.done():
            done.set_result((ended, report, n, fractions or {}))

    def _update_coverage(self) -> dict[int, float]:
        """Add the bone points placed since the last update; each level's coverage."""
        if self.coverage is None:
            bands = self._bands()
            if bands is None or self._points_since is None:
                return {}
            self.coverage, self._chunk = LevelCoverage(bands), 0  # the X-ray came mid-sweep
        points, self._chunk = self._points_since(self._chunk)
        if len(points):
            self.coverage.add(points)
        fractions = self.coverage.fractions()
        self._pub_markers.publish(
            coverage_markers(self.coverage, fractions, self.min_coverage, self.frame_id)
        )
        return fractions

    def _publish_feedback(self) -> None:
        fb = self.protocol.feedback(time.monotonic())
        if fb is not None and self._handle is not None:
            fb["coverage"], fb["min_coverage"] = self._update_coverage(), self.min_coverage
            self._handle.publish_feedback(feedback_msg(fb))
            if self._on_coverage is not None and fb["coverage"] and fb["state"] == "recording":
                done = covered(fb["coverage"], self.min_coverage)
                self._on_coverage(fb["sweep_id"], fb["coverage"], done, self.coverage.points())

    def _on_feedback_tick(self) -> None:
        if self._handle is None:
            return
        self._publish_feedback()
        # A client that vanished (crashed, unplugged) leaves no reader of the feedback.
        now = time.monotonic()
        if self.node.count_subscribers(self._feedback_topic) > 0:
            self._no_client_since = None
        elif self._no_client_since is None:
            self._no_client_since = now
        elif now - self._no_client_since >= self.client_lost_s:
            self.abort(
                f"its client vanished (no reader of the feedback for {self.client_lost_s:g} s)"
            )
