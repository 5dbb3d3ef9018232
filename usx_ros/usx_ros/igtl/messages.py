"""OpenIGTLink messages of usx (protocol header version 1, as Slicer's OpenIGTLinkIF reads).

Conventions: every position is in the robot base frame, millimetres. Slicer takes the
coordinates of a received message as its RAS world, and usx sends them unchanged (no axis
flip), so the Slicer scene is laid out in the robot's axes; an image is sent with its
coordinate system flagged RAS for the same reason (no conversion on either side).

TRANSFORM and IMAGE are packed by ``pyigtl`` (header, CRC-64 included). Its POLYDATA
writer stores the vertex indices in the machine's byte order instead of big-endian (and
its reader does not run), so :func:`polydata_message` packs POLYDATA here from the
protocol's specification, on ``pyigtl``'s header and CRC.
"""

from __future__ import annotations

import struct

import numpy as np
import pyigtl


def transform_message(device: str, T_mm: np.ndarray, timestamp_s: float) -> bytes:
    """TRANSFORM ``device``: a 4x4 rigid transform, translation in mm."""
    T = np.asarray(T_mm, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise ValueError(f"expected a finite 4x4 transform, got shape {T.shape}")
    return pyigtl.TransformMessage(T, timestamp=timestamp_s, device_name=device).pack()


def image_message(
    device: str, image: np.ndarray, ijk_to_world_mm: np.ndarray, timestamp_s: float
) -> bytes:
    """IMAGE ``device``: one 2D frame (rows, cols) placed by ``ijk_to_world_mm``.

    ``ijk_to_world_mm`` maps homogeneous (column, row, 0, 1) to mm (i = column, j = row).
    """
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected a 2D uint8 or uint16 image, got {img.shape} {img.dtype}")
    msg = pyigtl.ImageMessage(
        img[np.newaxis],  # pyigtl's axes are (k, j, i)
        ijk_to_world_matrix=np.asarray(ijk_to_world_mm, dtype=np.float64),
        world_coordinate_system="ras",
        timestamp=timestamp_s,
        device_name=device,
    )
    return msg.pack()


#: Attribute type of per-point scalars (OpenIGTLink POLYDATA: 0x00 point scalar).
POINT_SCALAR = 0x00
#: Longest attribute name the protocol allows (igtl_polydata.h).
MAX_ATTRIBUTE_NAME = 255


class _PolyData(pyigtl.PolyDataMessage):
    """POLYDATA with points, one vertex cell per point and per-point scalar attributes,
    packed per the spec (all numbers big-endian).

    After the 40-byte counts, the points and the vertex cells come the attributes: one
    6-byte header each (uint8 type, uint8 components, uint32 count), then their names,
    each NUL-terminated, padded with one NUL to an even length, then each attribute's
    float32 values.
    """

    point_scalars: dict[str, np.ndarray]

    def _pack_content(self) -> bytes:
        points = np.ascontiguousarray(self.points, dtype=">f4")
        n = len(points)
        # VERTICES: one cell per point, each "1, index" (uint32 big-endian)
        cells = np.empty((n, 2), dtype=">u4")
        cells[:, 0] = 1
        cells[:, 1] = np.arange(n)
        scalars = self.point_scalars
        head = struct.pack(">10I", n, n, cells.nbytes, 0, 0, 0, 0, 0, 0, len(scalars))
        headers = b"".join(struct.pack(">BBI", POINT_SCALAR, 1, n) for _ in scalars)
        names = b"".join(name.encode() + b"\0" for name in scalars)
        names += b"\0" * (len(names) % 2)
        values = b"".join(np.asarray(v, dtype=">f4").tobytes() for v in scalars.values())
        return head + points.tobytes() + cells.tobytes() + headers + names + values


def polydata_message(
    device: str,
    points_mm: np.ndarray,
    timestamp_s: float,
    point_scalars: dict[str, np.ndarray] | None = None,
) -> bytes:
    """POLYDATA ``device``: (N, 3) points (mm) with one vertex cell each (a point cloud).

    ``point_scalars``: name -> (N,) values sent as point data (Slicer's OpenIGTLinkIF makes
    each a point-data array of the model, to colour it by), e.g. ``{"uncertainty_mm": u}``.
    """
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
        raise ValueError(f"expected finite (N, 3) points, got shape {pts.shape}")
    scalars = {}
    for name, values in (point_scalars or {}).items():
        v = np.asarray(values, dtype=np.float64)
        if not name or len(name.encode()) > MAX_ATTRIBUTE_NAME or "\0" in name:
            raise ValueError(
                f"point scalar name: expected 1-{MAX_ATTRIBUTE_NAME} bytes, got {name!r}"
            )
        if v.shape != (len(pts),) or not np.isfinite(v).all():
            raise ValueError(
                f"point scalar {name!r}: expected {len(pts)} finite values, got shape {v.shape}"
            )
        scalars[name] = v
    msg = _PolyData(points=pts, timestamp=timestamp_s, device_name=device)
    msg.point_scalars = scalars
    return msg.pack()


def parse_header(data: bytes) -> tuple[str, str, int]:
    """(type, device name, body size) of a packed message's 58-byte header."""
    if len(data) < 58:
        raise ValueError(f"expected at least 58 header bytes, got {len(data)}")
    _version, mtype, device, _ts, size, _crc = struct.unpack(">H12s20sQQQ", data[:58])
    return mtype.rstrip(b"\0").decode(), device.rstrip(b"\0").decode(), size


def parse_polydata(body: bytes) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(points (N, 3) float32, vertex cells flat uint32, point scalars by name) of a
    POLYDATA body as :func:`polydata_message` packs it (no lines, polygons or strips)."""
    head = struct.unpack(">10I", body[:40])
    n, vsize, n_attr = head[0], head[2], head[9]
    if any(head[3:9]):
        raise ValueError(f"expected points and vertices only, got section sizes {head[3:9]}")
    at = 40 + 12 * n
    points = np.frombuffer(body[40:at], dtype=">f4").reshape(n, 3)
    cells = np.frombuffer(body[at : at + vsize], dtype=">u4")
    at += vsize
    shapes = [struct.unpack(">BBI", body[at + 6 * i : at + 6 * i + 6]) for i in range(n_attr)]
    at += 6 * n_attr
    names = []
    start = at
    for _ in range(n_attr):
        end = body.index(b"\0", at)
        names.append(body[at:end].decode())
        at = end + 1
    at += (at - start) % 2
    scalars = {}
    for name, (kind, components, count) in zip(names, shapes, strict=True):
        if kind != POINT_SCALAR:
            raise ValueError(f"attribute {name!r}: expected point scalars (0x00), got {kind:#04x}")
        size = 4 * components * count
        values = np.frombuffer(body[at : at + size], dtype=">f4").reshape(count, components)
        scalars[name] = values[:, 0] if components == 1 else values
        at += size
    if at != len(body):
        raise ValueError(f"POLYDATA body: {len(body) - at} bytes left after the attributes")
    return points, cells, scalars
