"""Pose interpolation: slerp against analytic rotations, tolerances, rejection counters."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation, Slerp

from usx_model.tracking.interpolation import (
    DropReason,
    PoseBuffer,
    interpolate_poses,
    quat_slerp,
    quat_to_matrix,
    seconds_to_ns,
)

MS = 1_000_000  # ns per millisecond


def _rz(angle_rad: float) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _quat_z(angle_rad: float) -> np.ndarray:
    return np.array([0, 0, np.sin(angle_rad / 2), np.cos(angle_rad / 2)])


@pytest.mark.parametrize(
    ("a0_deg", "a1_deg", "fraction", "expected_deg"),
    [
        (0, 90, 0.5, 45),
        (0, 90, 0.25, 22.5),
        (10, 170, 0.75, 130),
        (170, -170, 0.5, 180),  # short way round through 180, not through 0
        (30, 30, 0.3, 30),  # identical endpoints
        (0, 1e-7, 0.5, 0.5e-7),  # nearly identical: no 0/0
    ],
)
def test_slerp_about_z_is_analytic(a0_deg, a1_deg, fraction, expected_deg):
    q = quat_slerp(_quat_z(np.deg2rad(a0_deg)), _quat_z(np.deg2rad(a1_deg)), fraction)
    np.testing.assert_allclose(quat_to_matrix(q), _rz(np.deg2rad(expected_deg)), atol=1e-12)


def test_slerp_matches_scipy_and_handles_sign_flip():
    rots = Rotation.random(2, random_state=3)
    q0, q1 = rots.as_quat()
    fractions = np.linspace(0, 1, 11)
    reference = Slerp([0, 1], rots)(fractions).as_matrix()
    ours = quat_to_matrix(quat_slerp(q0[None], q1[None], fractions))
    np.testing.assert_allclose(ours, reference, atol=1e-12)
    ours_flipped = quat_to_matrix(quat_slerp(q0[None], -q1[None], fractions))
    np.testing.assert_allclose(ours_flipped, reference, atol=1e-12)


def test_quat_to_matrix_matches_scipy():
    q = Rotation.random(20, random_state=0).as_quat()
    np.testing.assert_allclose(quat_to_matrix(q), Rotation.from_quat(q).as_matrix(), atol=1e-12)


def _track():
    stamps = np.array([0, 10, 20, 40]) * MS
    t = np.array([[0, 0, 0], [10, 0, 0], [10, 20, 0], [10, 20, 40]], dtype=float)
    q = np.stack([_quat_z(np.deg2rad(a)) for a in (0, 90, 90, 0)])
    return stamps, t, q


@pytest.mark.parametrize(
    ("query_ms", "valid", "position", "angle_deg"),
    [
        (0, True, [0, 0, 0], 0),  # endpoint exact
        (10, True, [10, 0, 0], 90),  # interior stamp exact
        (40, True, [10, 20, 40], 0),  # last endpoint exact
        (2.5, True, [2.5, 0, 0], 22.5),
        (30, True, [10, 20, 20], 45),
        (-1, False, None, None),  # before the first pose
        (41, False, None, None),  # after the last pose
    ],
)
def test_interpolate_poses(query_ms, valid, position, angle_deg):
    stamps, t, q = _track()
    T, ok = interpolate_poses(stamps, t, q, np.array([int(query_ms * MS)]), tolerance_ns=15 * MS)
    assert ok[0] == valid
    if valid:
        np.testing.assert_allclose(T[0, :3, 3], position, atol=1e-9)
        np.testing.assert_allclose(T[0, :3, :3], _rz(np.deg2rad(angle_deg)), atol=1e-12)
    else:
        np.testing.assert_array_equal(T[0], np.eye(4))


@pytest.mark.parametrize(
    ("tolerance_ms", "query_ms", "valid"),
    [
        (10, 30, True),  # 10 ms to either neighbour
        (9.9, 30, False),
        (9.9, 22, False),  # near the pose before, but the pose after is 18 ms away
        (18, 22, True),
        (0, 20, True),  # exact match needs no tolerance
    ],
)
def test_tolerance_is_checked_on_both_neighbours(tolerance_ms, query_ms, valid):
    stamps, t, q = _track()
    _, ok = interpolate_poses(
        stamps, t, q, np.array([query_ms * MS]), seconds_to_ns(tolerance_ms / 1e3)
    )
    assert ok[0] == valid


def test_buffer_lookup_offset_and_counters():
    buf = PoseBuffer(capacity=10, tolerance_s=0.015, temporal_offset_s=0.005)
    stamps, t, q = _track()
    for s, ti, qi in zip(stamps, t, q, strict=True):
        assert buf.add(s, ti, qi) is None
    # image stamped at 25 ms is looked up at 30 ms
    hit = buf.lookup(25 * MS)
    assert hit.valid and hit.reason is None
    np.testing.assert_allclose(hit.T_base_ee[:3, 3], [10, 20, 20])
    miss = buf.lookup(50 * MS)
    assert not miss.valid and miss.T_base_ee is None and miss.reason is DropReason.NO_POSE
    assert buf.add(40 * MS, t[0], q[0]) is DropReason.OUT_OF_ORDER  # same stamp again
    assert buf.add(30 * MS, t[0], q[0]) is DropReason.OUT_OF_ORDER  # backwards
    assert buf.add(50 * MS, [np.nan, 0, 0], q[0]) is DropReason.INVALID_POSE
    assert buf.add(50 * MS, t[0], [0, 0, 0, 1.1]) is DropReason.INVALID_POSE
    assert buf.add_transform(50 * MS, np.full((4, 4), np.inf)) is DropReason.INVALID_POSE
    assert buf.counts == {
        DropReason.NO_POSE: 1,
        DropReason.OUT_OF_ORDER: 2,
        DropReason.INVALID_POSE: 3,
    }
    assert buf.accepted_poses == 4 and len(buf) == 4


def test_buffer_accepts_slightly_unnormalised_quaternion_and_renormalises():
    buf = PoseBuffer(tolerance_s=1.0, quat_norm_tolerance=1e-3)
    assert buf.add(0, [0, 0, 0], [0, 0, 0, 1.0005]) is None
    T = buf.lookup(0).T_base_ee
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-12)


def test_buffer_capacity_drops_oldest_and_matches_batch():
    buf = PoseBuffer(capacity=5, tolerance_s=1.0)
    rng = np.random.default_rng(0)
    quats = Rotation.random(23, random_state=2).as_quat()
    trans = rng.normal(size=(23, 3))
    for i in range(23):
        buf.add_transform(
            i * MS,
            np.block(
                [
                    [Rotation.from_quat(quats[i]).as_matrix(), trans[i][:, None]],
                    [np.zeros((1, 3)), np.ones((1, 1))],
                ]
            ),
        )
    assert len(buf) == 5 and buf.newest_stamp_ns == 22 * MS
    assert not buf.lookup(17 * MS + MS // 2).valid  # 17 fell out of the buffer
    got = buf.lookup(20 * MS + MS // 4)
    T, ok = interpolate_poses(np.arange(23) * MS, trans, quats, np.array([20 * MS + MS // 4]), MS)
    assert ok[0] and got.valid
    np.testing.assert_allclose(got.T_base_ee, T[0], atol=1e-12)


def test_restarted_buffer_keeps_settings_and_poses_with_fresh_counters():
    buf = PoseBuffer(capacity=4, tolerance_s=0.015, temporal_offset_s=0.005)
    stamps, t, q = _track()
    for s, ti, qi in zip(stamps, t, q, strict=True):
        buf.add(s, ti, qi)
    buf.add(0, t[0], q[0])  # out of order: counted in the old buffer only
    buf.lookup(90 * MS)
    new = buf.restarted()
    assert new.counts == dict.fromkeys(DropReason, 0) and new.accepted_poses == 0
    assert (new.capacity, new.tolerance_ns, new.temporal_offset_ns) == (
        buf.capacity,
        buf.tolerance_ns,
        buf.temporal_offset_ns,
    )
    assert len(new) == len(buf) and new.newest_stamp_ns == buf.newest_stamp_ns
    for image_ms in (5, 12, 25, 33, 50):
        a, b = buf.lookup(image_ms * MS), new.lookup(image_ms * MS)
        assert a.valid == b.valid
        if a.valid:
            np.testing.assert_array_equal(a.T_base_ee, b.T_base_ee)
    assert new.add(50 * MS, t[0], q[0]) is None  # the new one grows on its own
    assert buf.newest_stamp_ns == 40 * MS and new.newest_stamp_ns == 50 * MS
    assert PoseBuffer().restarted().newest_stamp_ns is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"capacity": 1}, "capacity >= 2"),
        ({"tolerance_s": -1.0}, "tolerance_s >= 0"),
        ({"tolerance_s": float("nan")}, "tolerance_s >= 0"),
    ],
)
def test_buffer_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PoseBuffer(**kwargs)


def test_buffer_add_shape_validation():
    with pytest.raises(ValueError, match=r"\(3,\) translation and a \(4,\) quaternion, got \(2,\)"):
        PoseBuffer().add(0, [0, 0], [0, 0, 0, 1])
    with pytest.raises(ValueError, match=r"T_base_ee of shape \(4, 4\), got \(3, 3\)"):
        PoseBuffer().add_transform(0, np.eye(3))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.array([0, 1]), np.zeros((2, 3)), np.zeros((3, 4)), np.array([0])), r"\(P, 4\) quat"),
        ((np.array([0.0, 1.0]), np.zeros((2, 3)), np.zeros((2, 4)), np.array([0])), "integer"),
        ((np.array([0, 0]), np.zeros((2, 3)), np.zeros((2, 4)), np.array([0])), "strictly"),
    ],
)
def test_interpolate_poses_validation(args, match):
    with pytest.raises(ValueError, match=match):
        interpolate_poses(*args, tolerance_ns=1)


@pytest.mark.parametrize("stamp", [0.5, 1.0, True, "1"])
def test_buffer_rejects_non_integer_stamps(stamp):
    buf = PoseBuffer()
    with pytest.raises(ValueError, match="expected an integer stamp in nanoseconds"):
        buf.add(stamp, [0, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ValueError, match="expected an integer stamp in nanoseconds"):
        buf.lookup(stamp)


def test_empty_buffer_lookup_is_no_pose():
    buf = PoseBuffer()
    assert not buf.pending(0)
    assert buf.lookup(0).reason is DropReason.NO_POSE


@pytest.mark.parametrize(
    ("image_ms", "pending"), [(39, False), (41, True), (45, True), (46, False)]
)
def test_pending(image_ms, pending):
    buf = PoseBuffer(tolerance_s=0.005)
    stamps, t, q = _track()
    for s, ti, qi in zip(stamps, t, q, strict=True):
        buf.add(s, ti, qi)
    assert buf.pending(image_ms * MS) == pending


def test_buffer_lookup_equals_the_vectorised_interpolation_everywhere():
    """The scalar per-frame path against ``interpolate_poses``: between, on and outside the
    stamps, beyond the tolerance on either side, across a quaternion sign flip and
    between equal rotations (the near-zero-angle branch)."""
    rng = np.random.default_rng(4)
    n = 40
    stamps = np.cumsum(rng.integers(2, 30, n)) * MS
    quats = Rotation.random(n, random_state=5).as_quat()
    quats[10] = -quats[9]  # the same rotation, opposite sign
    quats[20] = quats[19]  # equal rotations
    trans = rng.normal(0.0, 50.0, (n, 3))
    tolerance_s, offset_s = 0.012, 0.003
    buf = PoseBuffer(capacity=n, tolerance_s=tolerance_s, temporal_offset_s=offset_s)
    for s, t, q in zip(stamps, trans, quats, strict=True):
        assert buf.add(int(s), t, q) is None
    queries = np.r_[
        rng.integers(stamps[0] - 40 * MS, stamps[-1] + 40 * MS, 400),
        stamps - round(offset_s * 1e9),  # exactly on a pose
    ]
    offset_ns = round(offset_s * 1e9)
    T, ok = interpolate_poses(stamps, trans, quats, queries + offset_ns, round(tolerance_s * 1e9))
    assert 50 < ok.sum() < len(ok)  # hits and misses both
    for q, want, valid in zip(queries, T, ok, strict=True):
        got = buf.lookup(int(q))
        assert got.valid == valid
        if valid:
            np.testing.assert_allclose(got.T_base_ee, want, atol=1e-12)
    assert buf.counts[DropReason.NO_POSE] == int((~ok).sum())
