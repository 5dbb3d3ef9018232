"""OpenIGTLink packing: values, byte order and CRC-64 against independent readers."""

from __future__ import annotations

import struct

import numpy as np
import pyigtl
import pytest

from usx_ros.igtl.messages import (
    image_message,
    parse_header,
    parse_polydata,
    polydata_message,
    transform_message,
)


def _crc64_naive(data: bytes) -> int:
    """CRC-64 ECMA-182 (the protocol's), bit by bit: polynomial 0x42F0E1EBA9EA3693."""
    crc = 0
    for byte in data:
        crc ^= byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ 0x42F0E1EBA9EA3693) if crc & (1 << 63) else crc << 1
            crc &= (1 << 64) - 1
    return crc


def _check_crc(packed: bytes) -> bytes:
    head, body = packed[:58], packed[58:]
    crc = struct.unpack(">Q", head[50:58])[0]
    assert crc == _crc64_naive(body)
    assert struct.unpack(">Q", head[42:50])[0] == len(body)
    return body


def test_transform_reads_back_in_pyigtl() -> None:
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    T[:3, 3] = [612.25, -40.5, 318.75]
    packed = transform_message("ProbeToBase", T, 12.5)
    _check_crc(packed)
    assert parse_header(packed)[:2] == ("TRANSFORM", "ProbeToBase")
    msg = pyigtl.TransformMessage()
    msg._unpack_content(packed[58:])
    np.testing.assert_allclose(msg.matrix, T, atol=1e-4)


def test_image_reads_back_in_pyigtl() -> None:
    img = (np.arange(12 * 20) % 251).astype(np.uint8).reshape(12, 20)
    ijk = np.diag([0.2, 0.3, 1.0, 1.0])
    ijk[:3, 3] = [10.0, 20.0, 30.0]
    packed = image_message("USImage", img, ijk, 1.0)
    _check_crc(packed)
    msg = pyigtl.ImageMessage()
    msg._unpack_content(packed[58:])
    np.testing.assert_array_equal(msg.image.reshape(12, 20), img)
    np.testing.assert_allclose(msg.ijk_to_world_matrix, ijk, atol=1e-4)


def test_polydata_points_and_vertices_are_big_endian_per_spec() -> None:
    pts = np.random.default_rng(0).uniform(-500, 800, (37, 3))
    packed = polydata_message("Spine_L3", pts, 3.0)
    body = _check_crc(packed)
    assert parse_header(packed) == ("POLYDATA", "Spine_L3", len(body))
    # spec: 10 uint32 counts, then float32 points, then the vertex cells, all big-endian
    counts = struct.unpack(">10I", body[:40])
    assert counts == (37, 37, 37 * 8, 0, 0, 0, 0, 0, 0, 0)
    points, cells, scalars = parse_polydata(body)
    np.testing.assert_allclose(points, pts, atol=1e-4)
    assert cells.reshape(-1, 2).tolist() == [[1, i] for i in range(37)]
    assert scalars == {}


def test_polydata_point_scalars_follow_the_spec_byte_for_byte() -> None:
    # igtl_polydata.h: after points and cells, one 6-byte header per attribute (uint8 type,
    # uint8 components, uint32 count), the NUL-terminated names padded to an even length,
    # then float32 values; big-endian throughout. Two points, one attribute "u" (2 bytes
    # with its NUL: no padding) and "ab" + "u" (5 bytes: one padding byte).
    pts = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    body = _check_crc(polydata_message("P", pts, 0.0, {"u": [0.5, 2.0]}))
    expected = (
        struct.pack(">10I", 2, 2, 16, 0, 0, 0, 0, 0, 0, 1)
        + struct.pack(">6f", *pts.ravel())
        + struct.pack(">4I", 1, 0, 1, 1)
        + struct.pack(">BBI", 0x00, 1, 2)
        + b"u\0"
        + struct.pack(">2f", 0.5, 2.0)
    )
    assert body == expected
    body = _check_crc(polydata_message("P", pts, 0.0, {"ab": [1, 2], "u": [3, 4]}))
    names_at = 40 + 24 + 16 + 2 * 6
    assert body[names_at : names_at + 6] == b"ab\0u\0\0"
    assert body[names_at + 6 :] == struct.pack(">4f", 1, 2, 3, 4)
    _, _, scalars = parse_polydata(body)
    assert {k: v.tolist() for k, v in scalars.items()} == {"ab": [1, 2], "u": [3, 4]}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: transform_message("T", np.eye(3), 0.0), "expected a finite 4x4 transform"),
        (lambda: polydata_message("P", np.zeros((4, 2)), 0.0), "expected finite (N, 3) points"),
        (
            lambda: polydata_message("P", np.zeros((4, 3)), 0.0, {"u": np.zeros(3)}),
            "point scalar 'u': expected 4 finite values, got shape (3,)",
        ),
        (
            lambda: polydata_message("P", np.zeros((1, 3)), 0.0, {"u": [np.nan]}),
            "point scalar 'u': expected 1 finite values",
        ),
        (
            lambda: polydata_message("P", np.zeros((1, 3)), 0.0, {"": [1.0]}),
            "point scalar name: expected 1-255 bytes",
        ),
        (
            lambda: polydata_message("P", np.full((2, 3), np.nan), 0.0),
            "expected finite (N, 3) points",
        ),
        (
            lambda: image_message("I", np.zeros((2, 2, 2), np.uint8), np.eye(4), 0.0),
            "expected a 2D uint8 or uint16 image",
        ),
    ],
)
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()
