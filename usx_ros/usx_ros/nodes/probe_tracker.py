"""probe_tracker: iiwa joint states (forward kinematics) or a flange pose -> probe pose.

Subscribes to ``/lbr/joint_states`` (sensor_msgs/JointState, the lbr_fri_ros2_stack
driver's topic) or to a flange ``PoseStamped``; publishes ``/usx/probe_pose``
(PoseStamped in the robot base frame, metres) = T_base_ee @ T_ee_probe, where the
hand-eye transform T_ee_probe comes from the probe calibration file
(``probe_calibration``, default config/probe.yaml). Kinematics live in
``usx_model.tracking``; this node only converts and validates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState

from usx_model.tracking.iiwa import JOINT_NAMES, forward_kinematics
from usx_model.tracking.stamps import StampGuard
from usx_ros.conversions import pose_to_transform_mm, stamp_to_ns, transform_mm_to_pose
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT
from usx_ros.health import InputHealth, publish_status
from usx_ros.interfaces import Endpoint
from usx_ros.nodes.common import PROBE_CALIBRATION_DOC, load_calibration, run_node
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import declare_params, param
from usx_ros.qos import STATE_QOS


@dataclass(frozen=True)
class TrackerParams:
    """Parameters of probe_tracker."""

    input: str = param(
        "joint_states",
        "pose source: joint_states (FK) or flange_pose",
        choices=("joint_states", "flange_pose"),
        read_only=True,
    )
    base_frame: str = param("lbr_link_0", "robot base frame (output frame_id)", read_only=True)
    flange_frame: str = param("lbr_link_ee", "robot flange frame", read_only=True)
    robot_name: str = param(
        "lbr", "prefix of the driver's joint names (lbr_A1..lbr_A7)", read_only=True
    )
    probe_calibration: str = param("", PROBE_CALIBRATION_DOC, read_only=True)
    check_joint_limits: bool = param(True, "reject joint states beyond the iiwa limits")
    max_stamp_step_s: float = param(
        5.0,
        "largest step of an input stamp after the last accepted one; a stamp beyond it is "
        "rejected (stamp_jump) and not adopted, s",
        min_value=0.001,
        max_value=3600.0,
        read_only=True,
    )
    stamp_recover_count: int = param(
        5,
        "consecutive consistent stamps, all rejected against the old reference, after which "
        "the tracker follows the source's new timeline (a clock step, a looped bag)",
        min_value=2,
        max_value=1000,
        read_only=True,
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = TrackerParams

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint(
        "subscribes",
        "/lbr/joint_states",
        "sensor_msgs/msg/JointState",
        "STATE_QOS",
        "input: joint_states",
    ),
    Endpoint(
        "subscribes",
        "/lbr/flange_pose",
        "geometry_msgs/msg/PoseStamped",
        "STATE_QOS",
        "input: flange_pose",
    ),
    Endpoint("publishes", "/usx/probe_pose", "geometry_msgs/msg/PoseStamped", "STATE_QOS"),
    Endpoint("publishes", "~/status", "std_msgs/msg/String", "RESULT_QOS", "counters, JSON"),
)


class ProbeTracker(ManagedNode):
    """Publishes the probe pose in the robot base frame for every valid robot state."""

    params: TrackerParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("probe_tracker", **kwargs)

    def configure(self) -> None:
        """Validate the parameters, load what the node needs, create its entities."""
        p = declare_params(self, TrackerParams)
        self.calibration = load_calibration(p.probe_calibration)
        self.health = InputHealth(self.get_logger())
        self._joint_names = [f"{p.robot_name}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
        self.stamps = StampGuard(int(p.max_stamp_step_s * 1e9), p.stamp_recover_count)
        self.pub = self.create_publisher(PoseStamped, "/usx/probe_pose", STATE_QOS)
        self.published = 0
        publish_status(self, self.health, lambda: {"poses_published": self.published})
        if p.input == "joint_states":
            self.create_subscription(
                JointState, "/lbr/joint_states", self._on_joint_state, STATE_QOS
            )
        else:
            self.create_subscription(
                PoseStamped, "/lbr/flange_pose", self._on_flange_pose, STATE_QOS
            )

    def T_ee_probe(self) -> np.ndarray:
        """The hand-eye transform of the probe calibration, mm."""
        return self.calibration.T_ee_probe

    def _on_joint_state(self, msg: JointState) -> None:
        index = {name: i for i, name in enumerate(msg.name)}
        missing = [n for n in self._joint_names if n not in index]
        if missing:
            self.health.reject("missing_joints", f"JointState lacks {missing}")
            return
        if len(msg.position) != len(msg.name):
            self.health.reject(
                "malformed", f"{len(msg.name)} names but {len(msg.position)} positions"
            )
            return
        q = np.array([msg.position[index[n]] for n in self._joint_names], dtype=np.float64)
        try:
            T_base_ee = forward_kinematics(q, check_limits=self.params.check_joint_limits)
        except ValueError as exc:
            self.health.reject("invalid_joints", str(exc))
            return
        self._publish(msg.header.stamp, T_base_ee)

    def _on_flange_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self.params.base_frame):
            self.health.reject(
                "wrong_frame", f"flange pose in {msg.header.frame_id!r}, expected base frame"
            )
            return
        try:
            T_base_ee = pose_to_transform_mm(msg.pose)
        except ValueError as exc:
            self.health.reject("invalid_pose", str(exc))
            return
        self._publish(msg.header.stamp, T_base_ee)

    def _publish(self, stamp, T_base_ee: np.ndarray) -> None:
        ns = stamp_to_ns(stamp)
        last, rebased = self.stamps.last_ns, self.stamps.rebased
        reason = self.stamps.check(ns)
        if reason is not None:
            self.health.reject(reason, f"stamp {ns} ns against the last accepted {last} ns")
            return
        if self.stamps.rebased != rebased:
            self.get_logger().warning(
                f"input stamps moved from {last} ns to {ns} ns and stayed there: following them"
            )
        out = PoseStamped()
        out.header.stamp = stamp
        out.header.frame_id = self.params.base_frame
        out.pose = transform_mm_to_pose(T_base_ee @ self.T_ee_probe())
        self.pub.publish(out)
        self.published += 1
        self.health.accept()


def main(args: list[str] | None = None) -> None:
    run_node(ProbeTracker, args)


if __name__ == "__main__":
    main()
