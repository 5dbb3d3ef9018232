"""Random and mutated messages for every input of the product nodes (``usx bench fuzz``).

Each generator returns a message (or a service request) of the topic's type whose fields
are drawn to break something: wrong sizes and encodings, NaN/inf, empty and oversized
arrays (bounded so the run stays in memory), wrong frame ids, stamps far in the past or
future, truncated data, point-field layouts that disagree with the payload; for services,
levels that do not exist and calls in any order. Some draws happen to be valid: the nodes
then count them as accepted.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import Image, JointState, PointCloud2, PointField
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from usx_msgs.msg import SweepCloud, SweepReport, XrayView
from usx_msgs.srv import CompleteSpine

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-30, 0.5, 2.0])


def _float(rng: np.random.Generator) -> float:
    return float(rng.choice(SPECIAL)) if rng.random() < 0.4 else float(rng.normal(0, 10))


def _header(rng: np.random.Generator) -> Header:
    frame = rng.choice(["lbr_link_0", "", "map", "lbr_link_0 ", "x" * 300])
    sec = int(rng.choice([0, 1, 2**31 - 1, int(rng.integers(0, 2**31))]))
    return Header(frame_id=str(frame), stamp=Time(sec=sec, nanosec=int(rng.integers(0, 10**9))))


def _bytes(rng: np.random.Generator, n: int) -> bytes:
    return rng.integers(0, 256, int(n), dtype=np.uint8).tobytes()


def joint_state(rng: np.random.Generator) -> JointState:
    n = int(rng.choice([0, 1, 6, 7, 7, 8, 20]))
    names = [f"lbr_A{i + 1}" for i in range(n)]
    if rng.random() < 0.3:
        rng.shuffle(names)
    if rng.random() < 0.2:
        names = [str(rng.integers(0, 99)) for _ in names]
    positions = [_float(rng) for _ in range(int(rng.choice([n, n, max(0, n - 1), n + 2])))]
    return JointState(header=_header(rng), name=names, position=positions)


def pose(rng: np.random.Generator) -> PoseStamped:
    msg = PoseStamped(header=_header(rng))
    p, q = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = _float(rng), _float(rng), _float(rng)
    q.x, q.y, q.z, q.w = _float(rng), _float(rng), _float(rng), _float(rng)
    return msg


def image(rng: np.random.Generator) -> Image:
    h, w = int(rng.choice([0, 1, 64, 512, 700])), int(rng.choice([0, 1, 64, 512, 9]))
    enc = str(rng.choice(["mono8", "mono16", "rgb8", "8UC1", "", "bgr8"]))
    step = int(rng.choice([w, w * 2, w - 1, 0, w + 3]))
    size = int(rng.choice([max(0, step * h), max(0, step * h - 1), 0, 17]))
    return Image(
        header=_header(rng),
        height=h,
        width=w,
        encoding=enc,
        is_bigendian=bool(rng.random() < 0.1),
        step=max(0, step),
        data=_bytes(rng, min(size, 2_000_000)),
    )


def cloud(rng: np.random.Generator) -> PointCloud2:
    names = list(
        rng.choice(["x", "y", "z", "level", "uncertainty", "rgb"], size=int(rng.integers(0, 6)))
    )
    if rng.random() < 0.5:
        names = ["x", "y", "z", *names]
    fields, offset = [], 0
    for name in names:
        dt = int(rng.choice([7, 7, 7, 2, 8, 0, 11]))  # mostly FLOAT32
        fields.append(
            PointField(
                name=str(name), offset=offset, datatype=dt, count=int(rng.choice([1, 1, 0, 3]))
            )
        )
        offset += int(rng.choice([4, 4, 1, 8]))
    n = int(rng.choice([0, 1, 5, 100, 5000]))
    step = int(rng.choice([offset, offset, offset + 4, max(0, offset - 2)]))
    if rng.random() < 0.7 and step >= 12 and fields:
        arr = rng.normal(0.5, 0.2, (n, step // 4)).astype(np.float32)
        arr[rng.random(arr.shape) < 0.01] = np.nan
        data = arr.tobytes()
    else:
        data = _bytes(rng, n * step)
    if rng.random() < 0.2:
        data = data[: int(rng.integers(0, len(data) + 1))]
    return PointCloud2(
        header=_header(rng),
        height=int(rng.choice([1, 1, 0, 2])),
        width=n,
        fields=fields,
        is_bigendian=bool(rng.random() < 0.1),
        point_step=step,
        row_step=step * n,
        data=data,
        is_dense=bool(rng.random() < 0.5),
    )


def _sweep_id(rng: np.random.Generator) -> str:
    return str(rng.choice(["sweep-1", "", "sweep-2", "s" * 300, "ä b/c"]))


def sweep_cloud(rng: np.random.Generator) -> SweepCloud:
    """A cloud of some sweep, final or live, its outer header now and then disagreeing
    with the cloud's (an empty final X-ray cloud is xray_ingest's "no points" answer)."""
    c = cloud(rng)
    header = c.header if rng.random() < 0.7 else _header(rng)
    final = bool(rng.random() < 0.5)
    return SweepCloud(header=header, sweep_id=_sweep_id(rng), cloud=c, final=final)


def xray_view(rng: np.random.Generator) -> XrayView:
    msg = XrayView(header=_header(rng))
    msg.image, msg.labels = image(rng), image(rng)
    for v in (msg.source, msg.detector_centre, msg.u_axis, msg.v_axis, msg.lateral_plane_point):
        v.x, v.y, v.z = _float(rng), _float(rng), _float(rng)
    msg.pixel_spacing = _float(rng)
    msg.parallel_beam = bool(rng.random() < 0.5)
    msg.depth_registered = bool(rng.random() < 0.5)
    return msg


def sweep_report(rng: np.random.Generator) -> SweepReport:
    counts = [int(rng.integers(0, 2000)) for _ in range(4)]
    return SweepReport(
        header=_header(rng),
        sweep_id=_sweep_id(rng),
        frames_expected=counts[0],
        frames_placed=counts[1],
        frames_no_contact=counts[2],
        frames_lost=counts[3],
        lost_fraction=_float(rng),
    )


#: Input topic -> (message type, generator), every subscription of the product nodes.
TOPICS: dict[str, tuple[type, Callable[[np.random.Generator], object]]] = {
    "/lbr/joint_states": (JointState, joint_state),
    "/usx/probe_pose": (PoseStamped, pose),
    "/us/image": (Image, image),
    "/usx/xray": (XrayView, xray_view),
    "/usx/sweep/bone_points": (SweepCloud, sweep_cloud),
    "/usx/sweep/xray_points": (SweepCloud, sweep_cloud),
    "/usx/completed_spine": (PointCloud2, cloud),
    "/usx/sweep_report": (SweepReport, sweep_report),
}


def trigger(rng: np.random.Generator) -> Trigger.Request:
    """Trigger has no fields: what is random is which service and when (the call order)."""
    return Trigger.Request()


def complete_request(rng: np.random.Generator) -> CompleteSpine.Request:
    """Levels that exist, that do not, repeated, empty, huge and odd strings."""
    pool = ["L1", "L2", "L3", "L4", "L5", "L0", "L6", "l3", "", " L2", "T12", "S1", "L" * 500]
    n = int(rng.choice([0, 1, 2, 5, 50, 2000]))
    levels = [str(rng.choice(pool)) for _ in range(n)]
    return CompleteSpine.Request(levels=levels, use_xray=bool(rng.random() < 0.5))


#: Services of the product nodes, called in random order (``usx bench fuzz``).
SERVICES: dict[str, tuple[type, Callable[[np.random.Generator], object]]] = {
    "/usx/sweep/start": (Trigger, trigger),
    "/usx/sweep/stop": (Trigger, trigger),
    "/usx/sweep/reset": (Trigger, trigger),
    "/usx/complete_spine": (CompleteSpine, complete_request),
}
