"""The usx topics as Rerun entities: one ROS message becomes its Rerun log calls.

The one conversion behind ``usx view``, whether the messages come from a bag
(``tools/view.py``) or from live subscriptions (``tools/view_live.py``). What a person
watching the sweep wants, on the ``ros_time`` time line (the bag's recorded stamps, or the
receive time live), in the robot base frame, metres (as on the ROS topics):

- ``world/probe``: the probe pose (forward kinematics of the joint states and the probe
  calibration), ``world/image_plane`` the outline of the B-mode image in 3D and
  ``us/image`` the frame itself (every ``image_stride``-th);
- ``world/bone_points``: the sweep's US bone points; ``world/xray_points``: the placed
  X-ray body points, coloured by level (darker);
- ``world/spine/L1`` .. ``L5``: the completed spine coloured by level (``LEVEL_RGB``, flat),
  labelled with its level and, where the quality gate failed it, its status;
  ``world/spine_uncertainty/L1`` .. ``L5`` the same points coloured by their uncertainty
  (hidden at first: toggle one or the other in the viewer);
- ``status/L1`` .. ``L5``: each level's status and confidence, as text.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import rerun as rr
import rerun.blueprint as rrb
from matplotlib import colormaps

from usx_model.evaluation.spine_report import LEVEL_COLOURS
from usx_model.tracking.calibration import load_probe_calibration
from usx_model.tracking.iiwa import JOINT_NAMES, forward_kinematics
from usx_ros.completion_status import STATUS_NAME
from usx_ros.conversions import cloud_to_array, image_to_array, mm_to_m

#: Level colours L1..L5 (RGB, uint8), the completion node's RViz palette.
LEVEL_RGB = np.array(
    [[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in LEVEL_COLOURS], dtype=np.uint8
)
#: Statuses whose points are a usable completion; other levels are labelled with theirs.
_USABLE = ("ok", "us_only_fallback")
_POINT_RADIUS_M = 0.0008
#: The topics logged, in the order of the entity list above.
TOPICS = (
    "/lbr/joint_states",
    "/us/image",
    "/usx/bone_points",
    "/usx/xray_points",
    "/usx/completed_spine",
    "/usx/spine_completion",
)


def _xyz(arr: np.ndarray) -> np.ndarray:
    return np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64)


def _image_outline_m(T_base_probe_mm: np.ndarray, T_probe_pixel: np.ndarray, shape) -> np.ndarray:
    """(5, 3) closed outline of a ``shape`` = (rows, cols) image in the base frame, metres."""
    rows, cols = shape
    corners = np.array(
        [
            [0, 0, 0, 1],
            [cols - 1, 0, 0, 1],
            [cols - 1, rows - 1, 0, 1],
            [0, rows - 1, 0, 1],
            [0, 0, 0, 1],
        ],
        dtype=np.float64,
    )
    return mm_to_m((corners @ (T_base_probe_mm @ T_probe_pixel).T)[:, :3])


def blueprint() -> rrb.Blueprint:
    """The viewer's layout: the 3D scene beside the B-mode frame and the level status."""
    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(
                name="spine",
                origin="/world",
                overrides={"/world/spine_uncertainty": rrb.EntityBehavior(visible=False)},
            ),
            rrb.Vertical(
                rrb.Spatial2DView(name="B-mode", origin="/us/image"),
                rrb.Tabs(
                    *(
                        rrb.TextDocumentView(name=f"L{lv}", origin=f"/status/L{lv}")
                        for lv in range(1, 6)
                    )
                ),
            ),
            column_shares=[3, 1],
        ),
        rrb.BlueprintPanel(state="collapsed"),
        rrb.SelectionPanel(state="collapsed"),
        rrb.TimePanel(state="collapsed"),
    )


class RerunLogger:
    """Logs usx messages to one Rerun recording stream, the same entities from any source.

    Args:
        rec: the stream (a file, a gRPC server, ...); the constructor logs the world's
            axes and the blueprint to it.
        calibration: probe calibration YAML (None: the shipped one).
        robot_name: prefix of the joint names (``lbr`` -> ``lbr_A1``..``lbr_A7``).
        pose_stride: log every ``pose_stride``-th joint state.
        image_stride: log every ``image_stride``-th B-mode frame (once a pose is known).

    Raises:
        ValueError: a stride < 1, or an invalid calibration.
        OSError: the calibration file cannot be read.
    """

    def __init__(
        self,
        rec: rr.RecordingStream,
        calibration: str | Path | None = None,
        robot_name: str = "lbr",
        pose_stride: int = 5,
        image_stride: int = 10,
    ) -> None:
        if pose_stride < 1 or image_stride < 1:
            raise ValueError(f"expected strides >= 1, got {pose_stride}, {image_stride}")
        cal = load_probe_calibration(calibration)
        self._T_ee_probe = cal.T_ee_probe
        self._T_probe_pixel = cal.T_probe_image @ cal.image.T_image_pixel()
        self._joint_names = [f"{robot_name}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
        self._pose_stride, self._image_stride = pose_stride, image_stride
        self._rec = rec
        self._T_base_probe: np.ndarray | None = None
        self._joint_count = self._image_count = 0
        self._unc_map = colormaps["viridis"]
        #: what was logged so far, by kind
        self.counts = {"poses": 0, "images": 0, "bone_points": 0, "xray_points": 0, "spines": 0}
        self._handlers: dict[str, Callable] = {
            "/lbr/joint_states": self._on_joint_states,
            "/us/image": self._on_image,
            "/usx/bone_points": self._on_bone_points,
            "/usx/xray_points": self._on_xray_points,
            "/usx/completed_spine": self._on_completed_spine,
            "/usx/spine_completion": self._on_spine_completion,
        }
        rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        rec.send_blueprint(blueprint())

    def log(self, topic: str, msg, stamp_ns: int) -> None:
        """Log one message of ``topic`` (one of ``TOPICS``) at ``stamp_ns`` on ``ros_time``.

        Raises:
            ValueError: an unknown topic, or a message that does not convert (an image
                encoding other than mono8, a cloud without its fields).
        """
        handler = self._handlers.get(topic)
        if handler is None:
            raise ValueError(f"expected one of {', '.join(TOPICS)}, got {topic}")
        self._rec.set_time("ros_time", timestamp=stamp_ns * 1e-9)
        handler(msg)

    def _on_joint_states(self, msg) -> None:
        self._joint_count += 1
        if (self._joint_count - 1) % self._pose_stride:
            return
        index = {n: i for i, n in enumerate(msg.name)}
        if any(n not in index for n in self._joint_names):
            return  # another robot's, or a gripper's, joint states
        q = np.array([msg.position[index[n]] for n in self._joint_names])
        T = forward_kinematics(q, check_limits=False) @ self._T_ee_probe
        self._T_base_probe = T
        self._rec.log(
            "world/probe", rr.Transform3D(translation=mm_to_m(T[:3, 3]), mat3x3=T[:3, :3])
        )
        self.counts["poses"] += 1

    def _on_image(self, msg) -> None:
        self._image_count += 1
        if (self._image_count - 1) % self._image_stride or self._T_base_probe is None:
            return
        img = image_to_array(msg, ("mono8", "8UC1"))
        self._rec.log("us/image", rr.Image(img))
        outline = _image_outline_m(self._T_base_probe, self._T_probe_pixel, img.shape)
        self._rec.log("world/image_plane", rr.LineStrips3D([outline], colors=[200, 200, 200]))
        self.counts["images"] += 1

    def _on_bone_points(self, msg) -> None:
        pts = _xyz(cloud_to_array(msg))
        self._rec.log(
            "world/bone_points", rr.Points3D(pts, colors=[180, 180, 180], radii=_POINT_RADIUS_M)
        )
        self.counts["bone_points"] += len(pts)

    def _on_xray_points(self, msg) -> None:
        arr = cloud_to_array(msg, ("x", "y", "z", "level"))
        lv = np.clip(arr["level"].astype(int), 1, 5)
        self._rec.log("world/xray_points", rr.Points3D(_xyz(arr), colors=LEVEL_RGB[lv - 1] // 2))
        self.counts["xray_points"] += len(arr)

    def _on_completed_spine(self, msg) -> None:
        arr = cloud_to_array(msg, ("x", "y", "z", "level", "uncertainty"))
        xyz, lv, unc = _xyz(arr), arr["level"].astype(int), arr["uncertainty"]
        status = arr["status"] if "status" in arr.dtype.names else None
        scale = float(np.percentile(unc, 95)) if len(unc) else 1.0
        for level in range(1, 6):
            sel = lv == level
            if not sel.any():
                # A later sweep without this level: the earlier one's points are stale.
                self._rec.log(f"world/spine/L{level}", rr.Clear(recursive=False))
                self._rec.log(f"world/spine_uncertainty/L{level}", rr.Clear(recursive=False))
                continue
            label = f"L{level}"
            if status is not None:
                name = STATUS_NAME.get(int(np.bincount(status[sel]).argmax()), "unknown")
                label += "" if name in _USABLE else f" {name.upper()}"
            self._rec.log(
                f"world/spine/L{level}",
                rr.Points3D(
                    xyz[sel],
                    colors=LEVEL_RGB[level - 1],
                    radii=_POINT_RADIUS_M,
                    labels=label,
                    # the palette's exact colour (a shaded sphere darkens it to its edge)
                    point_shading="flat",
                ),
            )
            rgb = self._unc_map(np.clip(unc[sel] / max(scale, 1e-9), 0, 1))[:, :3] * 255
            self._rec.log(
                f"world/spine_uncertainty/L{level}",
                rr.Points3D(xyz[sel], colors=rgb.astype(np.uint8), radii=_POINT_RADIUS_M),
            )
        self.counts["spines"] += 1

    def _on_spine_completion(self, msg) -> None:
        for v in msg.vertebrae:
            text = (
                f"{v.level}: {STATUS_NAME.get(v.status, v.status)}, confidence "
                f"{v.confidence:.2f}, {v.num_us_points} US / {v.num_xray_points} X-ray points"
                + (f" ({v.status_message})" if v.status_message else "")
            )
            self._rec.log(f"status/{v.level}", rr.TextDocument(text))
