"""A recorded sweep as a Rerun recording (``usx view --bag BAG --save FILE.rrd``).

What a person watching the sweep wants, on the bag's time line (``ros_time``, the
recorded stamps), in the robot base frame, metres (as on the ROS topics):

- ``world/probe``: the probe pose (forward kinematics of the recorded joint states and
  the probe calibration), with ``world/probe/image_plane`` the outline of the B-mode
  image in 3D and ``us/image`` the frame itself (every ``image_stride``-th);
- ``world/bone_points``: the sweep's US bone points; ``world/xray_points``: the placed
  X-ray body points, coloured by level;
- ``world/spine/L1`` .. ``L5``: the completed spine coloured by level, and
  ``world/spine_uncertainty/L1`` .. ``L5`` the same points coloured by their uncertainty
  (toggle one or the other in the viewer);
- ``status/L1`` .. ``L5``: each level's status and confidence, as text.

The viewer: ``rerun FILE.rrd`` (rerun-sdk's own binary) or any Rerun web viewer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rerun as rr
from matplotlib import colormaps

from usx_model.evaluation.spine_report import LEVEL_COLOURS
from usx_model.tracking.calibration import load_probe_calibration
from usx_model.tracking.iiwa import JOINT_NAMES, forward_kinematics
from usx_ros.completion_status import STATUS_NAME
from usx_ros.conversions import cloud_to_array, image_to_array, mm_to_m
from usx_ros.tools.bag import read_bag

#: Level colours L1..L5 (RGB), the completion node's RViz palette.
LEVEL_RGB = np.array(
    [[int(c[k : k + 2], 16) for k in (1, 3, 5)] for c in LEVEL_COLOURS], dtype=np.uint8
)
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


def write_recording(
    bag: str | Path,
    out: str | Path,
    calibration: str | Path | None = None,
    robot_name: str = "lbr",
    pose_stride: int = 5,
    image_stride: int = 10,
) -> dict[str, int]:
    """Write the bag's sweep to a Rerun recording ``out`` (.rrd); what was logged, by kind.

    Raises:
        ValueError: the bag is unreadable, or holds none of the topics above.
    """
    if pose_stride < 1 or image_stride < 1:
        raise ValueError(f"expected strides >= 1, got {pose_stride}, {image_stride}")
    cal = load_probe_calibration(calibration)
    T_ee_probe = cal.T_ee_probe
    T_probe_pixel = cal.T_probe_image @ cal.image.T_image_pixel()
    names = [f"{robot_name}_{j.split('_', 1)[1]}" for j in JOINT_NAMES]
    rec = rr.RecordingStream("usx")
    rec.save(str(out))
    rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    counts = {"poses": 0, "images": 0, "bone_points": 0, "xray_points": 0, "spines": 0}
    T_base_probe = None
    joint_count = image_count = 0
    unc_map = colormaps["viridis"]
    for r in read_bag(bag, TOPICS):
        rec.set_time("ros_time", timestamp=r.stamp_ns * 1e-9)
        msg = r.deserialize()
        if r.topic == "/lbr/joint_states":
            joint_count += 1
            if (joint_count - 1) % pose_stride:
                continue
            index = {n: i for i, n in enumerate(msg.name)}
            if any(n not in index for n in names):
                continue
            q = np.array([msg.position[index[n]] for n in names])
            T_base_probe = forward_kinematics(q, check_limits=False) @ T_ee_probe
            rec.log(
                "world/probe",
                rr.Transform3D(
                    translation=mm_to_m(T_base_probe[:3, 3]), mat3x3=T_base_probe[:3, :3]
                ),
            )
            counts["poses"] += 1
        elif r.topic == "/us/image":
            image_count += 1
            if (image_count - 1) % image_stride or T_base_probe is None:
                continue
            img = image_to_array(msg, ("mono8", "8UC1"))
            rec.log("us/image", rr.Image(img))
            outline = _image_outline_m(T_base_probe, T_probe_pixel, img.shape)
            rec.log("world/image_plane", rr.LineStrips3D([outline], colors=[200, 200, 200]))
            counts["images"] += 1
        elif r.topic == "/usx/bone_points":
            pts = _xyz(cloud_to_array(msg))
            rec.log("world/bone_points", rr.Points3D(pts, colors=[180, 180, 180], radii=0.0008))
            counts["bone_points"] += len(pts)
        elif r.topic == "/usx/xray_points":
            arr = cloud_to_array(msg, ("x", "y", "z", "level"))
            lv = np.clip(arr["level"].astype(int), 1, 5)
            rec.log("world/xray_points", rr.Points3D(_xyz(arr), colors=LEVEL_RGB[lv - 1] // 2))
            counts["xray_points"] += len(arr)
        elif r.topic == "/usx/completed_spine":
            arr = cloud_to_array(msg, ("x", "y", "z", "level", "uncertainty"))
            xyz, lv, unc = _xyz(arr), arr["level"].astype(int), arr["uncertainty"]
            scale = float(np.percentile(unc, 95)) if len(unc) else 1.0
            for level in range(1, 6):
                sel = lv == level
                if not sel.any():
                    continue
                rec.log(
                    f"world/spine/L{level}",
                    rr.Points3D(xyz[sel], colors=LEVEL_RGB[level - 1], radii=0.0008),
                )
                rgb = unc_map(np.clip(unc[sel] / max(scale, 1e-9), 0, 1))[:, :3] * 255
                rec.log(
                    f"world/spine_uncertainty/L{level}",
                    rr.Points3D(xyz[sel], colors=rgb.astype(np.uint8), radii=0.0008),
                )
            counts["spines"] += 1
        elif r.topic == "/usx/spine_completion":
            for v in msg.vertebrae:
                text = (
                    f"{v.level}: {STATUS_NAME.get(v.status, v.status)}, confidence "
                    f"{v.confidence:.2f}, {v.num_us_points} US / {v.num_xray_points} X-ray points"
                    + (f" ({v.status_message})" if v.status_message else "")
                )
                rec.log(f"status/{v.level}", rr.TextDocument(text))
    rec.flush()
    rec.disconnect()
    if not any(counts.values()):
        raise ValueError(f"bag {bag}: none of {', '.join(TOPICS)} found")
    return counts
