"""The one place where usx converts between core arrays (mm) and ROS messages (m).

The core library works in millimetres; ROS messages carry metres (REP 103). Every
unit conversion at the ROS boundary goes through ``mm_to_m`` / ``m_to_mm`` here, so
no node multiplies by 1000 on its own.

PointCloud2 packing is written with numpy structured arrays (``sensor_msgs_py`` is
not available as a wheel): fields are little-endian, densely packed, one point per
``point_step`` bytes, ``height == 1`` for unorganised clouds.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

MM_PER_M = 1000.0

# PointField datatype codes <-> numpy dtypes (sensor_msgs/PointField constants).
_DATATYPE_TO_DTYPE: dict[int, np.dtype] = {
    PointField.INT8: np.dtype("i1"),
    PointField.UINT8: np.dtype("u1"),
    PointField.INT16: np.dtype("<i2"),
    PointField.UINT16: np.dtype("<u2"),
    PointField.INT32: np.dtype("<i4"),
    PointField.UINT32: np.dtype("<u4"),
    PointField.FLOAT32: np.dtype("<f4"),
    PointField.FLOAT64: np.dtype("<f8"),
}
_DTYPE_TO_DATATYPE: dict[np.dtype, int] = {v: k for k, v in _DATATYPE_TO_DTYPE.items()}


def mm_to_m(values_mm: np.ndarray | float) -> np.ndarray | float:
    """Millimetres (core) to metres (ROS)."""
    return np.asarray(values_mm, dtype=np.float64) / MM_PER_M


def m_to_mm(values_m: np.ndarray | float) -> np.ndarray | float:
    """Metres (ROS) to millimetres (core)."""
    return np.asarray(values_m, dtype=np.float64) * MM_PER_M


def array_to_cloud(points: np.ndarray, header: Header) -> PointCloud2:
    """Pack a structured array (one record per point) into a PointCloud2.

    Args:
        points: (N,) structured array whose fields are scalar numeric types; values are
            written as they are (convert units before calling).
        header: stamp and frame of the cloud.

    Raises:
        ValueError: not a 1-D structured array, or a field of an unsupported type.
    """
    if points.dtype.names is None or points.ndim != 1:
        raise ValueError(
            f"expected a 1-D structured array, got dtype {points.dtype} with shape {points.shape}"
        )
    fields = []
    packed_dtype = {"names": [], "formats": [], "offsets": [], "itemsize": 0}
    offset = 0
    for name in points.dtype.names:
        dt = points.dtype.fields[name][0].newbyteorder("<")
        if dt not in _DTYPE_TO_DATATYPE:
            raise ValueError(f"field {name!r} has unsupported dtype {dt}")
        fields.append(
            PointField(name=name, offset=offset, datatype=_DTYPE_TO_DATATYPE[dt], count=1)
        )
        packed_dtype["names"].append(name)
        packed_dtype["formats"].append(dt)
        packed_dtype["offsets"].append(offset)
        offset += dt.itemsize
    packed_dtype["itemsize"] = offset
    packed = np.empty(points.shape[0], dtype=np.dtype(packed_dtype))
    for name in points.dtype.names:
        packed[name] = points[name]
    msg = PointCloud2()
    msg.header = header
    msg.height = 1
    msg.width = int(points.shape[0])
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = offset
    msg.row_step = offset * msg.width
    msg.data = packed.tobytes()
    msg.is_dense = bool(
        all(
            np.isfinite(points[n]).all()
            for n in points.dtype.names
            if np.issubdtype(points.dtype.fields[n][0], np.floating)
        )
    )
    return msg


def cloud_to_array(msg: PointCloud2, required: tuple[str, ...] = ("x", "y", "z")) -> np.ndarray:
    """Unpack a PointCloud2 into an (N,) structured array (a copy).

    Args:
        msg: the cloud; organised clouds (height > 1) are flattened row-major.
        required: field names that must be present.

    Raises:
        ValueError: missing required fields, big-endian data, a field with count != 1,
            an unknown datatype, or a data length that disagrees with width/height/steps.
    """
    names = [f.name for f in msg.fields]
    missing = [r for r in required if r not in names]
    if missing:
        raise ValueError(f"PointCloud2 lacks field(s) {missing}; it has {names}")
    if msg.is_bigendian:
        raise ValueError("big-endian PointCloud2 is not supported")
    n = int(msg.width) * int(msg.height)
    if msg.point_step == 0 and n > 0:
        raise ValueError("PointCloud2 has point_step 0 with points")
    if int(msg.row_step) < int(msg.width) * int(msg.point_step):
        raise ValueError(
            f"row_step {msg.row_step} < width {msg.width} x point_step {msg.point_step}"
        )
    expected = int(msg.row_step) * int(msg.height)
    if len(msg.data) != expected:
        raise ValueError(
            f"PointCloud2 data has {len(msg.data)} bytes, expected row_step x height = {expected}"
        )
    spec = {"names": [], "formats": [], "offsets": [], "itemsize": int(msg.point_step)}
    for f in msg.fields:
        if f.count != 1:
            raise ValueError(
                f"field {f.name!r} has count {f.count}; only scalar fields are supported"
            )
        if f.datatype not in _DATATYPE_TO_DTYPE:
            raise ValueError(f"field {f.name!r} has unknown datatype {f.datatype}")
        dt = _DATATYPE_TO_DTYPE[f.datatype]
        if f.offset + dt.itemsize > msg.point_step:
            raise ValueError(
                f"field {f.name!r} at offset {f.offset} overruns point_step {msg.point_step}"
            )
        spec["names"].append(f.name)
        spec["formats"].append(dt)
        spec["offsets"].append(int(f.offset))
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(int(msg.height), int(msg.row_step))
    rows = raw[:, : int(msg.width) * int(msg.point_step)].reshape(-1)
    return np.frombuffer(rows.tobytes(), dtype=np.dtype(spec)).copy()


def xyz_from_cloud_mm(msg: PointCloud2) -> np.ndarray:
    """(N, 3) float64 points in mm from a PointCloud2 in metres; rejects non-finite points."""
    arr = cloud_to_array(msg)
    xyz = np.stack([arr["x"], arr["y"], arr["z"]], axis=1).astype(np.float64)
    if not np.isfinite(xyz).all():
        bad = int((~np.isfinite(xyz).all(axis=1)).sum())
        raise ValueError(f"PointCloud2 has {bad} point(s) with NaN/inf coordinates")
    return m_to_mm(xyz)


def points_mm_to_cloud(
    points_mm: np.ndarray,
    header: Header,
    extra: Mapping[str, np.ndarray] | None = None,
) -> PointCloud2:
    """PointCloud2 with float32 x, y, z in metres plus extra per-point fields.

    Args:
        points_mm: (N, 3) points in mm in ``header.frame_id``.
        header: stamp and frame.
        extra: name -> (N,) array; written with its own dtype (convert lengths to metres
            before passing them, e.g. ``mm_to_m(uncertainty_mm)``).
    """
    points_mm = np.asarray(points_mm, dtype=np.float64)
    if points_mm.ndim != 2 or points_mm.shape[1] != 3:
        raise ValueError(f"expected (N, 3) points, got shape {points_mm.shape}")
    extra = dict(extra or {})
    for name, values in extra.items():
        if np.shape(values) != (points_mm.shape[0],):
            n = points_mm.shape[0]
            raise ValueError(f"extra field {name!r} has shape {np.shape(values)}, expected ({n},)")
    dtype = [("x", "<f4"), ("y", "<f4"), ("z", "<f4")]
    dtype += [(name, np.asarray(v).dtype.newbyteorder("<")) for name, v in extra.items()]
    arr = np.empty(points_mm.shape[0], dtype=dtype)
    xyz_m = mm_to_m(points_mm)
    arr["x"], arr["y"], arr["z"] = xyz_m[:, 0], xyz_m[:, 1], xyz_m[:, 2]
    for name, values in extra.items():
        arr[name] = values
    return array_to_cloud(arr, header)


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> builtin_interfaces/Time."""
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def seconds_to_duration(seconds: float) -> Duration:
    """Float seconds -> builtin_interfaces/Duration."""
    ns = round(seconds * 1e9)
    return Duration(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def pose_to_transform_mm(pose, quat_tolerance: float = 1e-3) -> np.ndarray:
    """geometry_msgs/Pose (m) -> 4x4 ``T_parent_child`` in mm.

    Raises:
        ValueError: NaN/inf values or a quaternion whose norm is off 1 by more than
            ``quat_tolerance`` (it is renormalised within the tolerance).
    """
    from usx_model.base.transforms import transform_from_pose

    t = np.array([pose.position.x, pose.position.y, pose.position.z], dtype=np.float64)
    q = np.array(
        [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w],
        dtype=np.float64,
    )
    if not (np.isfinite(t).all() and np.isfinite(q).all()):
        raise ValueError("pose has NaN/inf position or orientation")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > quat_tolerance:
        raise ValueError(f"pose quaternion has norm {norm:.6f}, expected 1 (+/- {quat_tolerance})")
    return transform_from_pose(m_to_mm(t), q / norm)


def transform_mm_to_pose(T_mm: np.ndarray):
    """4x4 ``T_parent_child`` in mm -> geometry_msgs/Pose in metres."""
    from geometry_msgs.msg import Pose

    from usx_model.base.transforms import pose_from_transform

    t_mm, q = pose_from_transform(np.asarray(T_mm, dtype=np.float64))
    t = mm_to_m(t_mm)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in t)
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q
    )
    return pose


_IMAGE_DTYPES = {
    "mono8": np.dtype("u1"),
    "8UC1": np.dtype("u1"),
    "mono16": np.dtype("<u2"),
    "16UC1": np.dtype("<u2"),
}


def array_to_image(array: np.ndarray, encoding: str, header: Header):
    """(rows, cols) uint8 (mono8) or uint16 (mono16, little-endian) array -> sensor_msgs/Image."""
    from sensor_msgs.msg import Image

    if encoding not in ("mono8", "mono16"):
        raise ValueError(f"expected encoding mono8 or mono16, got {encoding!r}")
    a = np.asarray(array)
    if a.ndim != 2:
        raise ValueError(f"expected a (rows, cols) image, got shape {a.shape}")
    a = np.ascontiguousarray(a, dtype=_IMAGE_DTYPES[encoding])
    return Image(
        header=header,
        height=a.shape[0],
        width=a.shape[1],
        encoding=encoding,
        is_bigendian=0,
        step=a.shape[1] * a.itemsize,
        data=a.tobytes(),
    )


def image_to_array(msg, encodings: tuple[str, ...] = ("mono8",)) -> np.ndarray:
    """sensor_msgs/Image -> (rows, cols) array (a copy), for single-channel encodings.

    Raises:
        ValueError: an encoding outside ``encodings``, big-endian 16-bit data, or a
            step/data size that disagrees with width and height.
    """
    if msg.encoding not in encodings or msg.encoding not in _IMAGE_DTYPES:
        raise ValueError(f"expected image encoding in {list(encodings)}, got {msg.encoding!r}")
    dt = _IMAGE_DTYPES[msg.encoding]
    if msg.is_bigendian and dt.itemsize > 1:
        raise ValueError("big-endian 16-bit images are not supported")
    h, w = int(msg.height), int(msg.width)
    if h == 0 or w == 0:
        raise ValueError(f"empty image ({h} x {w})")
    if int(msg.step) < w * dt.itemsize:
        raise ValueError(f"image step {msg.step} < width {w} x {dt.itemsize} bytes")
    if len(msg.data) != int(msg.step) * h:
        raise ValueError(
            f"image data has {len(msg.data)} bytes, expected step x height = {int(msg.step) * h}"
        )
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(h, int(msg.step))
    return rows[:, : w * dt.itemsize].copy().view(dt).reshape(h, w)


def point_mm_to_msg(p_mm: np.ndarray):
    """(3,) mm -> geometry_msgs/Point in metres."""
    from geometry_msgs.msg import Point

    x, y, z = (float(v) for v in mm_to_m(np.asarray(p_mm, dtype=np.float64).reshape(3)))
    return Point(x=x, y=y, z=z)


def point_msg_to_mm(p) -> np.ndarray:
    """geometry_msgs/Point or Vector3 in metres -> (3,) mm; rejects NaN/inf."""
    v = np.array([p.x, p.y, p.z], dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError(f"point has NaN/inf coordinates: {v}")
    return m_to_mm(v)


def xray_view_to_msg(
    geometry_mm,
    image: np.ndarray,
    label: np.ndarray,
    header: Header,
    plane_point_mm: np.ndarray | None = None,
):
    """usx_msgs/XrayView from a geometry already in ``header.frame_id`` (mm) and images."""
    from geometry_msgs.msg import Vector3

    from usx_msgs.msg import XrayView

    msg = XrayView(header=header)
    msg.image = array_to_image(image, "mono16" if image.dtype == np.uint16 else "mono8", header)
    msg.labels = array_to_image(label, "mono8", header)
    msg.source = point_mm_to_msg(np.asarray(geometry_mm.source_mm))
    msg.detector_centre = point_mm_to_msg(np.asarray(geometry_mm.detector_centre_mm))
    msg.u_axis = Vector3(**dict(zip("xyz", map(float, geometry_mm.u_axis), strict=True)))
    msg.v_axis = Vector3(**dict(zip("xyz", map(float, geometry_mm.v_axis), strict=True)))
    msg.pixel_spacing = float(mm_to_m(geometry_mm.pixel_mm))
    msg.parallel_beam = bool(geometry_mm.parallel)
    msg.depth_registered = plane_point_mm is not None
    if plane_point_mm is not None:
        msg.lateral_plane_point = point_mm_to_msg(plane_point_mm)
    return msg


def xray_view_from_msg(msg):
    """usx_msgs/XrayView -> core ``XrayObservation`` (geometry in the message frame, mm).

    Raises:
        ValueError: label image of the wrong encoding/size, no labelled pixel, NaN or
            zero-length axes, non-positive pixel spacing.
    """
    from usx_model.base.xray_geometry import XrayGeometry
    from usx_model.completion.xray_placement import XrayObservation

    label = image_to_array(msg.labels, ("mono8", "8UC1"))
    if not (label > 0).any():
        raise ValueError("X-ray label image has no labelled pixels (all background)")
    if not (msg.pixel_spacing > 0):
        raise ValueError(f"X-ray pixel_spacing must be > 0 m, got {msg.pixel_spacing}")
    u = np.array([msg.u_axis.x, msg.u_axis.y, msg.u_axis.z])
    v = np.array([msg.v_axis.x, msg.v_axis.y, msg.v_axis.z])
    for name, axis in (("u_axis", u), ("v_axis", v)):
        if not np.isfinite(axis).all() or abs(np.linalg.norm(axis) - 1.0) > 1e-3:
            raise ValueError(f"X-ray {name} must be a finite unit vector, got {axis}")
    geometry = XrayGeometry(
        source_mm=tuple(point_msg_to_mm(msg.source)),
        detector_centre_mm=tuple(point_msg_to_mm(msg.detector_centre)),
        u_axis=tuple(u),
        v_axis=tuple(v),
        pixel_mm=float(m_to_mm(msg.pixel_spacing)),
        shape=label.shape,
        parallel=bool(msg.parallel_beam),
    )
    plane = point_msg_to_mm(msg.lateral_plane_point) if msg.depth_registered else None
    image = None
    if msg.image.height and msg.image.width:
        image = image_to_array(msg.image, ("mono16", "mono8", "16UC1", "8UC1"))
        if image.shape != label.shape:
            raise ValueError(
                f"X-ray image {image.shape} and label image {label.shape} differ in size"
            )
    return XrayObservation(
        label=label.astype(np.int64), geometry=geometry, plane_point_mm=plane, image=image
    )


def sweep_report_msg(loss, header: Header, sweep_end_ns: int = 0):
    """usx_msgs/SweepReport from a core ``compounding.frame_loss.FrameLoss`` and the node
    clock's time of the sweep's stop (ns)."""
    from usx_msgs.msg import SweepReport

    return SweepReport(
        header=header,
        sweep_end=ns_to_stamp(max(0, int(sweep_end_ns))),
        frames_expected=int(loss.expected),
        frames_placed=int(loss.placed),
        frames_no_contact=int(loss.no_contact),
        frames_lost=int(loss.lost),
        lost_fraction=float(loss.fraction),
    )


def sweep_report_fraction(msg) -> float:
    """The lost fraction of a usx_msgs/SweepReport, checked against its counts.

    Raises:
        ValueError: counts that do not add up, or a fraction that disagrees with them.
    """
    expected, lost = int(msg.frames_expected), int(msg.frames_lost)
    accounted = int(msg.frames_placed) + int(msg.frames_no_contact) + lost
    if accounted != expected:
        raise ValueError(
            f"expected placed + no_contact + lost == expected, got {msg.frames_placed} + "
            f"{msg.frames_no_contact} + {lost} != {expected}"
        )
    fraction = lost / expected if expected else 0.0
    if not abs(float(msg.lost_fraction) - fraction) <= 1e-3:
        raise ValueError(
            f"expected lost_fraction {fraction:.4f} (frames_lost / frames_expected), "
            f"got {msg.lost_fraction}"
        )
    return fraction


def sweep_points_coverage(msg) -> tuple[dict[int, float], dict[int, bool], dict[int, int]]:
    """Each level's coverage, covered flag and bone points of a usx_msgs/SweepPoints, by
    level number (points: empty when the message has none).

    Raises:
        ValueError: levels that are not distinct L1..L5, lists of unequal length, or a
            coverage outside 0..1.
    """
    names, cov, done = list(msg.levels), list(msg.coverage), list(msg.covered)
    counts = [int(n) for n in msg.points]
    if not (len(names) == len(cov) == len(done)) or len(counts) not in (0, len(names)):
        raise ValueError(
            f"expected levels, coverage, covered (and points) of equal length, got "
            f"{len(names)}, {len(cov)}, {len(done)}, {len(counts)}"
        )
    levels = []
    for name in names:
        lv = name[1:] if name[:1] == "L" else ""
        if lv not in ("1", "2", "3", "4", "5"):
            raise ValueError(f"expected levels L1..L5, got {name!r}")
        levels.append(int(lv))
    if len(set(levels)) != len(levels):
        raise ValueError(f"expected distinct levels, got {names}")
    for name, c in zip(names, cov, strict=True):
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"expected coverage in 0..1, got {c} for {name}")
    return (
        {lv: float(c) for lv, c in zip(levels, cov, strict=True)},
        {lv: bool(d) for lv, d in zip(levels, done, strict=True)},
        dict(zip(levels, counts, strict=False)),
    )
