"""xray_ingest: lateral X-ray + vertebral-body labels + registration -> 3D X-ray points.

The X-ray arrives as a ``usx_msgs/XrayView`` on ``/usx/xray`` (geometry in the base
frame, e.g. from the phantom or a C-arm bridge) or from files at start-up (DICOM, or
PNG + JSON geometry, de-identified by ``usx_model.ingest.xray``; labels as a PNG; the
device pose ``T_base_xray`` from parameters). Each label pixel's ray is cut with the
vertebral-body mid-plane: the CBCT-registered plane when the view carries one, else the
paper's heuristic from a sweep's US bone points (``/usx/sweep/bone_points``,
``usx_msgs/SweepCloud``). Publishes the placed points on ``/usx/sweep/xray_points``
(``usx_msgs/SweepCloud`` named by the sweep whose points placed them: x, y, z in m, level
uint8; base frame; reliable + transient-local) and the same cloud on ``/usx/xray_points``
for viewers and bags, stamped like the bone points it was placed with. Every sweep's
final bone points get one answer: the placed points, or an empty cloud when there is no
X-ray or the placement failed (completion then goes on at once, US-only). While a sweep
records, the X-ray is also placed on its bone points so far (``/usx/sweep/live_points``, at
most every ``live_place_period_s``) for the live completion; each sweep's final bone
points place it again. A stopped sweep's closing points (``SweepPoints.closing``: all its
points before the breathing fit) are placed on at once and not published: when the final
bone points are the same points (no breathing correction applied), that placement is their
answer, made while us_compounding fitted the breathing.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.completion.xray_placement import (
    XrayObservation,
    place_xray,
    registration_gradients,
)
from usx_model.ingest.xray import read_xray_dicom, read_xray_png
from usx_msgs.msg import SweepCloud, SweepPoints, XrayView
from usx_ros.conversions import (
    points_mm_to_cloud,
    xray_view_from_msg,
)
from usx_ros.diagnostics import DIAGNOSTICS_ENDPOINT
from usx_ros.health import InputHealth, bone_points_or_reject, publish_status
from usx_ros.interfaces import Endpoint
from usx_ros.memory import trim_heap
from usx_ros.nodes.common import run_node
from usx_ros.nodes.managed import ManagedNode
from usx_ros.params import ParameterError, declare_params, param
from usx_ros.qos import LIVE_QOS, RESULT_QOS


@dataclass(frozen=True)
class XrayIngestParams:
    """Parameters of xray_ingest."""

    base_frame: str = param("lbr_link_0", "robot base frame", read_only=True)
    xray_file: str = param(
        "", "DICOM or PNG X-ray to load at start-up ('' = topic only)", read_only=True
    )
    geometry_file: str = param("", "JSON geometry of a PNG X-ray", read_only=True)
    labels_file: str = param(
        "", "PNG label image (0 background, 1..5 L1..L5 bodies)", read_only=True
    )
    xray_xyz_mm: tuple[float, ...] = param(
        (0.0, 0.0, 0.0),
        "T_base_xray translation (device calibration + registration), mm",
        length=3,
        read_only=True,
    )
    xray_rpy_deg: tuple[float, ...] = param(
        (0.0, 0.0, 0.0), "T_base_xray rotation, URDF rpy, degrees", length=3, read_only=True
    )
    reregister: bool = param(
        True,
        "re-register the X-ray in its plane to the US bone points before placing it (a "
        "patient who moved after the shot); needs the X-ray's image",
    )
    live_place_period_s: float = param(
        5.0,
        "while a sweep records, place the X-ray on its bone points so far "
        "(/usx/sweep/live_points) at most this often, for the live completion (0 = only on "
        "each sweep's final bone points), s",
        min_value=0.0,
        max_value=600.0,
    )
    patient_posterior: tuple[float, ...] = param(
        (0.0, 0.0, 1.0),
        "direction from the spine to the probe side (posterior), base frame",
        length=3,
    )


#: This node's parameter schema (docs/parameters.md, usx_ros/test/test_config.py).
PARAMS = XrayIngestParams

ENDPOINTS = (
    DIAGNOSTICS_ENDPOINT,
    Endpoint("subscribes", "/usx/xray", "usx_msgs/msg/XrayView", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/sweep/bone_points", "usx_msgs/msg/SweepCloud", "RESULT_QOS"),
    Endpoint("subscribes", "/usx/sweep/live_points", "usx_msgs/msg/SweepPoints", "LIVE_QOS"),
    Endpoint(
        "publishes",
        "/usx/sweep/xray_points",
        "usx_msgs/msg/SweepCloud",
        "RESULT_QOS",
        "placed body points, with the sweep id",
    ),
    Endpoint(
        "publishes",
        "/usx/xray_points",
        "sensor_msgs/msg/PointCloud2",
        "RESULT_QOS",
        "the same cloud, for viewers and bags",
    ),
    Endpoint("publishes", "~/status", "std_msgs/msg/String", "RESULT_QOS", "counters, JSON"),
)


def _read_labels(path: str) -> np.ndarray:
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    if img.dtype != np.uint8:  # matplotlib returns floats in [0, 1] for 8-bit PNGs
        img = np.rint(np.asarray(img) * 255).astype(np.int64)
    return np.asarray(img if img.ndim == 2 else img[..., 0], dtype=np.int64)


class XrayIngest(ManagedNode):
    """Places the X-ray's vertebral bodies in 3D for each sweep."""

    params: XrayIngestParams  # kept current by declare_params

    def __init__(self, **kwargs) -> None:
        super().__init__("xray_ingest", **kwargs)

    def configure(self) -> None:
        """Validate the parameters, load what the node needs, create its entities."""
        p = declare_params(self, XrayIngestParams)
        self.health = InputHealth(self.get_logger())
        self.xray: XrayObservation | None = None
        # the last closed sweep's bone points, their stamp and the sweep's id
        self._bone_mm: np.ndarray | None = None
        self._bone_stamp, self._bone_sweep = None, ""
        self._live_id, self._live_at = "", -np.inf  # the latest live placement
        # what re-registering the X-ray samples, made once per X-ray and posterior
        self._gradients, self._gradients_for = None, None
        self.published = 0
        # the latest placement: (X-ray, (points digest, posterior), level -> points)
        self._placed: tuple | None = None
        self.reused = 0  # placements answered from the latest one (the same inputs)
        #: seconds the latest placement took (the completion node waits for it)
        self.last_place_s: float | None = None
        if p.xray_file:
            self.xray = self._load_files()
        self.pub = self.create_publisher(PointCloud2, "/usx/xray_points", RESULT_QOS)
        self.pub_sweep = self.create_publisher(SweepCloud, "/usx/sweep/xray_points", RESULT_QOS)
        publish_status(
            self,
            self.health,
            lambda: {
                "xray": self.xray is not None,
                "placements": self.published,
                "placements_reused": self.reused,
                "last_place_s": self.last_place_s,
            },
        )
        self.create_subscription(XrayView, "/usx/xray", self._on_xray, RESULT_QOS)
        self.create_subscription(SweepCloud, "/usx/sweep/bone_points", self._on_bone, RESULT_QOS)
        self.create_subscription(SweepPoints, "/usx/sweep/live_points", self._on_live, LIVE_QOS)

    def _load_files(self) -> XrayObservation:
        p = self.params
        try:
            if p.xray_file.lower().endswith(".png"):
                shot = read_xray_png(p.xray_file, p.geometry_file)
            else:
                shot = read_xray_dicom(p.xray_file)
            if shot.geometry is None:
                raise ValueError("the X-ray has no usable geometry (non-square pixels?)")
            if not p.labels_file:
                raise ValueError("parameter 'labels_file' is required with 'xray_file'")
            label = _read_labels(p.labels_file)
            T = transform_from_xyz_rpy(p.xray_xyz_mm, p.xray_rpy_deg)
        except (OSError, ValueError) as exc:
            raise ParameterError(f"parameter 'xray_file': {exc}") from exc
        self.get_logger().info(f"X-ray loaded ({shot.spacing_source.value})")
        return XrayObservation(label=label, geometry=shot.geometry, T_base_xray=T, image=shot.image)

    def _on_xray(self, msg: XrayView) -> None:
        if msg.header.frame_id not in ("", self.params.base_frame):
            self.health.reject("wrong_frame", f"X-ray geometry in {msg.header.frame_id!r}")
            return
        try:
            self.xray = xray_view_from_msg(msg)
        except ValueError as exc:
            self.health.reject("invalid_xray", str(exc))
            return
        self.health.accept()
        self._place()

    def _on_bone(self, msg: SweepCloud) -> None:
        """A closed sweep's bone points: place the X-ray on them, for that sweep."""
        pts = bone_points_or_reject(
            self.health,
            msg.cloud,
            msg.header.frame_id,
            self.params.base_frame,
            "bone points",
            "invalid_cloud",
        )
        if pts is None:
            return
        self._bone_mm, self._bone_stamp, self._bone_sweep = (
            pts,
            msg.cloud.header.stamp,
            msg.sweep_id,
        )
        self._place()

    def _on_live(self, msg: SweepPoints) -> None:
        """A recording sweep's bone points so far: place the X-ray on them (rate-bounded);
        a stopped sweep's closing points: place it on them for its final points."""
        period, now = self.params.live_place_period_s, time.monotonic()
        if self.xray is None or msg.discarded or (period <= 0 and not msg.closing):
            return
        if not msg.closing and msg.sweep_id == self._live_id and now - self._live_at < period:
            return
        if msg.sweep_id == self._bone_sweep:
            return  # late: that sweep's final bone points have placed it already
        pts = bone_points_or_reject(
            self.health,
            msg.cloud,
            msg.header.frame_id,
            self.params.base_frame,
            "live points",
            "invalid_cloud",
        )
        if pts is None:
            return
        if msg.closing:
            self._place(pts, msg.header.stamp, msg.sweep_id, final=False, publish=False)
            return
        self._live_id, self._live_at = msg.sweep_id, now
        self._place(pts, msg.header.stamp, msg.sweep_id, final=False)

    def _place(
        self,
        bone_mm: np.ndarray | None = None,
        stamp=None,
        sweep_id: str = "",
        final: bool = True,
        publish: bool = True,
    ) -> None:
        """Place the X-ray on ``bone_mm`` of sweep ``sweep_id`` (default: the last closed
        sweep's bone points; ``final`` false: a recording sweep's points so far; ``publish``
        false: only kept, for final points that turn out to be the same)."""
        if bone_mm is None:
            bone_mm, stamp, sweep_id = self._bone_mm, self._bone_stamp, self._bone_sweep
        if bone_mm is None:
            return
        header = Header(frame_id=self.params.base_frame, stamp=stamp)
        if self.xray is None:
            if final:  # the answer completion waits for: no X-ray points for this sweep
                self._answer_none(header, sweep_id)
            return
        t0 = time.perf_counter()
        posterior = np.array(self.params.patient_posterior) if self.params.reregister else None
        key = (_digest(bone_mm), None if posterior is None else tuple(posterior))
        placed = self._placed  # the X-ray by identity: a new XrayView is placed again
        reused = placed is not None and placed[0] is self.xray and placed[1] == key
        try:
            if reused:
                by_level = placed[2]
            else:
                by_level = place_xray(bone_mm, self.xray, posterior, self._registration(posterior))
                self._placed = (self.xray, key, by_level)
        except ValueError as exc:
            self.health.reject("placement_failed", str(exc))
            if final:
                self._answer_none(header, sweep_id)
            return
        if not publish:
            self.get_logger().info(
                f"placed the X-ray on sweep {sweep_id!r}'s closing points in "
                f"{time.perf_counter() - t0:.2f} s (kept for its final points)"
            )
            return
        self.reused += int(reused)
        levels = sorted(by_level)
        pts = np.concatenate([by_level[lv] for lv in levels])
        lv = np.concatenate([np.full(len(by_level[v]), v, np.uint8) for v in levels])
        cloud = points_mm_to_cloud(pts, header, {"level": lv})
        self.pub_sweep.publish(
            SweepCloud(header=header, sweep_id=sweep_id, cloud=cloud, final=final)
        )
        self.pub.publish(cloud)
        self.published += 1
        self.last_place_s = time.perf_counter() - t0
        how = "reusing the placement on the same points" if reused else "placed"
        self.get_logger().info(
            f"{how}: {len(pts)} X-ray body points of {len(levels)} levels in "
            f"{self.last_place_s:.2f} s"
        )
        trim_heap()  # the placement's images and arrays are garbage now

    def _answer_none(self, header: Header, sweep_id: str) -> None:
        """Tell completion that this sweep has no X-ray points (an empty final cloud), so
        that it completes with the US-only model now instead of waiting."""
        cloud = points_mm_to_cloud(np.zeros((0, 3)), header, {"level": np.zeros(0, np.uint8)})
        self.pub_sweep.publish(
            SweepCloud(header=header, sweep_id=sweep_id, cloud=cloud, final=True)
        )

    def _registration(self, posterior: np.ndarray | None):
        """The X-ray's registration gradients, made again only for a new X-ray or posterior
        (the X-ray held in the key: an identity test on a live object is exact)."""
        post = None if posterior is None else tuple(posterior)
        made = self._gradients_for
        if made is None or made[0] is not self.xray or made[1] != post:
            self._gradients = registration_gradients(self.xray, posterior)
            self._gradients_for = (self.xray, post)
        return self._gradients


def _digest(points_mm: np.ndarray) -> tuple:
    """What identifies a placement's bone points: their shape and the bytes' hash."""
    pts = np.ascontiguousarray(points_mm, dtype=np.float64)
    return pts.shape, hashlib.blake2b(pts.tobytes(), digest_size=16).digest()


def main(args: list[str] | None = None) -> None:
    run_node(XrayIngest, args)


if __name__ == "__main__":
    main()
