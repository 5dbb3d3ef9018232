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


class _PolyData(pyigtl.PolyDataMessage):
    """POLYDATA with points only and one vertex cell per point, packed per the spec."""

    def _pack_content(self) -> bytes:
        points = np.ascontiguousarray(self.points, dtype=">f4")
        n = len(points)
        # VERTICES: one cell per point, each "1, index" (uint32 big-endian)
        cells = np.empty((n, 2), dtype=">u4")
        cells[:, 0] = 1
        cells[:, 1] = np.arange(n)
        head = struct.pack(">10I", n, n, cells.nbytes, 0, 0, 0, 0, 0, 0, 0)
        return head + points.tobytes() + cells.tobytes()


def polydata_message(device: str, points_mm: np.ndarray, timestamp_s: float) -> bytes:
    """POLYDATA ``device``: (N, 3) points (mm) with one vertex cell each (a point cloud)."""
    pts = np.asarray(points_mm, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
        raise ValueError(f"expected finite (N, 3) points, got shape {pts.shape}")
    return _PolyData(points=pts, timestamp=timestamp_s, device_name=device).pack()


def parse_header(data: bytes) -> tuple[str, str, int]:
    """(type, device name, body size) of a packed message's 58-byte header."""
    if len(data) < 58:
        raise ValueError(f"expected at least 58 header bytes, got {len(data)}")
    _version, mtype, device, _ts, size, _crc = struct.unpack(">H12s20sQQQ", data[:58])
    return mtype.rstrip(b"\0").decode(), device.rstrip(b"\0").decode(), size


def parse_polydata(body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(points (N, 3) float32, vertex cells flat uint32) of a POLYDATA body."""
    head = struct.unpack(">10I", body[:40])
    n, _ncells, vsize = head[0], head[1], head[2]
    points = np.frombuffer(body[40 : 40 + 12 * n], dtype=">f4").reshape(n, 3)
    cells = np.frombuffer(body[40 + 12 * n : 40 + 12 * n + vsize], dtype=">u4")
    return points, cells
