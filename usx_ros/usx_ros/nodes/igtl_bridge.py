"""igtl_bridge: the live scene to 3D Slicer (or any OpenIGTLink client) over TCP.

Serves OpenIGTLink on ``bind_address:port`` (18944, Slicer's default; localhost by
default) and sends, in the robot base frame, millimetres, coordinates unchanged (Slicer
takes them as its RAS world: its scene is laid out in the robot's axes):

- TRANSFORM ``ProbeToBase`` for every probe pose (``T_base_probe``);
- IMAGE ``USImage`` for B-mode frames (at most ``image_rate_hz``), placed by the latest
  probe pose and the probe calibration (the pose is not interpolated to the frame's
  stamp: the US compounding does that, this is a live view);
- POLYDATA ``Spine_L1`` .. ``Spine_L5``: each completed vertebra's points, one vertex
  cell per point, when a completed spine arrives, with the per-point uncertainty (mm) as
  the point-data scalar ``uncertainty_mm`` when the cloud carries one (Slicer: Models
  module, Display > Scalars, to colour the vertebra by it).

Several clients may connect; one that falls behind loses its oldest messages, one that
disconnects is dropped, and neither holds up the ROS callbacks. A port already taken is
reported (``/diagnostics`` ERROR) and the node goes on without serving. In Slicer:
OpenIGTLinkIF module, a client connector to this host and port.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, PointCloud2

from usx_ros.conversions import (
    cloud_to_array,
    image_to_array,
    m_to_mm,
    pose_to_transform_mm,
    stamp_to_ns,
)
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT, ERROR, NodeDiagnostics
from usx_ros.health import InputHealth
from usx_ros.igtl.messages import image_message, polydata_message, transform_message
from usx_ros.igtl.server import IgtlServer
from usx_ros.interfaces import Endpoint
from usx_ros.nodes.common import PROBE_CALIBRATION_DOC, load_calibration, run_node
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import declare_params, param
from usx_ros.qos import RESULT_QOS, SENSOR_QOS, STATE_QOS

#: Point-data name of the per-point uncertainty (mm) in the POLYDATA messages.
UNCERTAINTY_NAME = "uncertainty_mm"


@dataclass(frozen=True)
class BridgeParams:
    """Parameters of igtl_bridge."""

    enabled: bool = param(True, "serve OpenIGTLink (false: the node idles)", read_only=True)
    port: int = param(
        18944, "TCP port (0: any free port, logged)", min_value=0, max_value=65535, read_only=True
    )
    bind_address: str = param(
        "127.0.0.1",
        "address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)",
        read_only=True,
    )
    image_rate_hz: float = param(
        10.0, "most B-mode frames sent per second (0: none)", min_value=0.0, max_value=120.0
    )
    base_frame: str = param("lbr_link_0", "robot base frame", read_only=True)
    probe_calibration: str = param("", PROBE_CALIBRATION_DOC, read_only=True)


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = BridgeParams

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint("subscribes", "/usx/probe_pose", "geometry_msgs/msg/PoseStamped", "STATE_QOS"),
    Endpoint("subscribes", "/us/image", "sensor_msgs/msg/Image", "SENSOR_QOS", "mono8"),
    Endpoint("subscribes", "/usx/completed_spine", "sensor_msgs/msg/PointCloud2", "RESULT_QOS"),
)


class IgtlBridge(ManagedNode):
    """Forwards the probe pose, B-mode frames and the completed spine to OpenIGTLink."""

    params: BridgeParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("igtl_bridge", **kwargs)

    def configure(self) -> None:
        """Validate the parameters, load what the node needs, create its entities."""
        p = declare_params(self, BridgeParams)
        self.calibration = load_calibration(p.probe_calibration)
        self._T_probe_pixel = (
            self.calibration.T_probe_image @ self.calibration.image.T_image_pixel()
        )
        self.health = InputHealth(self.get_logger())
        self.server: IgtlServer | None = None
        self.error = ""
        self.sent = {"transform": 0, "image": 0, "polydata": 0}
        self._T_base_probe: np.ndarray | None = None
        self._last_image_s = -np.inf
        if p.enabled:
            try:
                self.server = IgtlServer(p.bind_address, p.port)
            except OSError as exc:
                self.error = f"cannot serve on {p.bind_address}:{p.port}: {exc}"
                self.get_logger().error(self.error)
            else:
                self.get_logger().info(f"OpenIGTLink on {self.server.host}:{self.server.port}")
        self.diagnostics = NodeDiagnostics(self, self.health, self._values, self._diagnose)
        if self.server is None:
            return
        self.create_subscription(PoseStamped, "/usx/probe_pose", self._on_pose, STATE_QOS)
        self.create_subscription(Image, "/us/image", self._on_image, SENSOR_QOS)
        self.create_subscription(PointCloud2, "/usx/completed_spine", self._on_spine, RESULT_QOS)

    # --- health ---------------------------------------------------------------------------
    def _values(self) -> dict:
        server = self.server
        return {
            "serving": f"{server.host}:{server.port}" if server else "",
            "clients": server.clients if server else 0,
            "connections": server.connections if server else 0,
            "sent": dict(self.sent),
        }

    def _diagnose(self) -> tuple[bytes, str] | None:
        return (ERROR, self.error) if self.error else None

    # --- inputs ---------------------------------------------------------------------------
    def _frame_ok(self, frame_id: str, what: str) -> bool:
        if frame_id not in ("", self.params.base_frame):
            self.health.reject("wrong_frame", f"{what} in {frame_id!r}")
            return False
        return True

    def _on_pose(self, msg: PoseStamped) -> None:
        if not self._frame_ok(msg.header.frame_id, "pose"):
            return
        try:
            T = pose_to_transform_mm(msg.pose)
        except ValueError as exc:
            self.health.reject("invalid_pose", str(exc))
            return
        self.health.accept()
        self._T_base_probe = T
        stamp_s = stamp_to_ns(msg.header.stamp) * 1e-9
        self.server.send("ProbeToBase", transform_message("ProbeToBase", T, stamp_s))
        self.sent["transform"] += 1

    def _on_image(self, msg: Image) -> None:
        rate = self.params.image_rate_hz
        now = time.monotonic()
        if rate <= 0 or self._T_base_probe is None or now - self._last_image_s < 1.0 / rate:
            return
        try:
            image = image_to_array(msg, ("mono8", "8UC1"))
        except ValueError as exc:
            self.health.reject("invalid_image", str(exc))
            return
        self.health.accept()
        self._last_image_s = now
        ijk_to_base = self._T_base_probe @ self._T_probe_pixel
        stamp_s = stamp_to_ns(msg.header.stamp) * 1e-9
        self.server.send("USImage", image_message("USImage", image, ijk_to_base, stamp_s))
        self.sent["image"] += 1

    def _on_spine(self, msg: PointCloud2) -> None:
        if not self._frame_ok(msg.header.frame_id, "completed spine"):
            return
        try:
            with_unc = any(f.name == "uncertainty" for f in msg.fields)
            fields = ("x", "y", "z", "level") + (("uncertainty",) if with_unc else ())
            arr = cloud_to_array(msg, fields)
            xyz = m_to_mm(np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64))
            levels = arr["level"].astype(int)
            if not np.isfinite(xyz).all() or not np.isin(levels, (1, 2, 3, 4, 5)).all():
                raise ValueError("expected finite points with levels 1..5")
            unc = m_to_mm(arr["uncertainty"].astype(np.float64)) if with_unc else None
            if unc is not None and not np.isfinite(unc).all():
                raise ValueError("expected a finite uncertainty")
        except ValueError as exc:
            self.health.reject("invalid_spine", str(exc))
            return
        self.health.accept()
        stamp_s = stamp_to_ns(msg.header.stamp) * 1e-9
        for lv in np.unique(levels):
            device, mine = f"Spine_L{lv}", levels == lv
            scalars = None if unc is None else {UNCERTAINTY_NAME: unc[mine]}
            self.server.send(device, polydata_message(device, xyz[mine], stamp_s, scalars))
            self.sent["polydata"] += 1

    def release(self) -> None:
        """Close the OpenIGTLink server (cleanup, shutdown): its clients see the end."""
        if self.server is not None:
            self.server.close()
            self.server = None


def main(args: list[str] | None = None) -> None:
    run_node(IgtlBridge, args)


if __name__ == "__main__":
    main()
