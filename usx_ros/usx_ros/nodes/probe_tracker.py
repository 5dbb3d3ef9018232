"""probe_tracker: iiwa joint states (forward kinematics) or a flange pose -> probe pose.

Subscribes to ``/lbr/joint_states`` (sensor_msgs/JointState, the lbr_fri_ros2_stack
driver's topic) or to a flange ``PoseStamped``; publishes ``/usx/probe_pose``
(PoseStamped in the robot base frame, metres) = T_base_ee @ T_ee_probe, where the
hand-eye transform T_ee_probe comes from parameters. Kinematics live in
``usx_model.tracking``; this node only converts and validates.
"""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.tracking.iiwa import JOINT_NAMES, forward_kinematics
from usx_ros.conversions import pose_to_transform_mm, stamp_to_ns, transform_mm_to_pose
from usx_ros.health import InputHealth
from usx_ros.nodes.common import run_node
from usx_ros.params import ParamSpec, declare_params
from usx_ros.qos import STATE_QOS

PARAMS = (
    ParamSpec(
        "input",
        "joint_states",
        "pose source: joint_states (FK) or flange_pose",
        choices=("joint_states", "flange_pose"),
        read_only=True,
    ),
    ParamSpec("joint_states_topic", "/lbr/joint_states", "JointState input", read_only=True),
    ParamSpec("flange_pose_topic", "/lbr/flange_pose", "PoseStamped flange input", read_only=True),
    ParamSpec("probe_pose_topic", "/usx/probe_pose", "PoseStamped output", read_only=True),
    ParamSpec("base_frame", "lbr_link_0", "robot base frame (output frame_id)", read_only=True),
    ParamSpec("flange_frame", "lbr_link_ee", "robot flange frame", read_only=True),
    ParamSpec(
        "robot_name", "lbr", "prefix of the driver's joint names (lbr_A1..lbr_A7)", read_only=True
    ),
    ParamSpec(
        "hand_eye_xyz_mm",
        [0.0, 0.0, 150.0],
        "T_ee_probe translation, mm",
        list_of=float,
        length=3,
        min_value=-1000.0,
        max_value=1000.0,
    ),
    ParamSpec(
        "hand_eye_rpy_deg",
        [0.0, 0.0, 0.0],
        "T_ee_probe rotation, URDF rpy, degrees",
        list_of=float,
        length=3,
        min_value=-360.0,
        max_value=360.0,
    ),
    ParamSpec("check_joint_limits", True, "reject joint states beyond the iiwa limits"),
)


class ProbeTracker(Node):
    """Publishes the probe pose in the robot base frame for every valid robot state."""

    def __init__(self, **kwargs) -> None:
        super().__init__("probe_tracker", **kwargs)
        self.p = declare_params(self, PARAMS)
        self.health = InputHealth(self.get_logger())
        self._joint_names = [f"{self.p['robot_name']}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
        self._last_stamp_ns = -1
        self.pub = self.create_publisher(PoseStamped, self.p["probe_pose_topic"], STATE_QOS)
        if self.p["input"] == "joint_states":
            self.create_subscription(
                JointState, self.p["joint_states_topic"], self._on_joint_state, STATE_QOS
            )
        else:
            self.create_subscription(
                PoseStamped, self.p["flange_pose_topic"], self._on_flange_pose, STATE_QOS
            )

    def T_ee_probe(self) -> np.ndarray:
        return transform_from_xyz_rpy(self.p["hand_eye_xyz_mm"], self.p["hand_eye_rpy_deg"])

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
            T_base_ee = forward_kinematics(q, check_limits=self.p["check_joint_limits"])
        except ValueError as exc:
            self.health.reject("invalid_joints", str(exc))
            return
        self._publish(msg.header.stamp, T_base_ee)

    def _on_flange_pose(self, msg: PoseStamped) -> None:
        if msg.header.frame_id not in ("", self.p["base_frame"]):
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
        if ns <= self._last_stamp_ns:
            self.health.reject(
                "out_of_order", f"stamp {ns} ns not after the previous {self._last_stamp_ns} ns"
            )
            return
        self._last_stamp_ns = ns
        out = PoseStamped()
        out.header.stamp = stamp
        out.header.frame_id = self.p["base_frame"]
        out.pose = transform_mm_to_pose(T_base_ee @ self.T_ee_probe())
        self.pub.publish(out)
        self.health.accept()


def main(args: list[str] | None = None) -> None:
    run_node(ProbeTracker, args)


if __name__ == "__main__":
    main()
