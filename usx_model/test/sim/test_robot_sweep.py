"""Robotic sweep planning: FK of the planned joints against the planned probe poses."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import transform_from_xyz_rpy
from usx_model.sim.probe import sweep_poses
from usx_model.sim.robot_sweep import (
    JOINT_SPEED_LIMITS_RAD_S,
    SWEEP_MARGIN_MM,
    default_table_pose,
    plan_robot_sweep,
    table_from_spine,
)
from usx_model.tracking.iiwa import JOINT_LIMITS_RAD, forward_kinematics

T_EE_PROBE = transform_from_xyz_rpy([5.0, -3.0, 150.0], [0.0, 0.0, 10.0])
RATES = {"frame_rate_hz": 30.0, "joint_rate_hz": 100.0}


def _plan(spine, **kw):
    args = {"sweep_speed_mm_s": 20.0, **RATES, **kw}
    table = args.pop("T_base_table", default_table_pose())
    return plan_robot_sweep(spine, table, T_EE_PROBE, **args)


@pytest.fixture(scope="module")
def plan(toy_spine):
    return _plan(toy_spine)


def _rotation_deg(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    R = np.swapaxes(A[..., :3, :3], -1, -2) @ B[..., :3, :3]
    return np.rad2deg(Rotation.from_matrix(R).magnitude())


def test_fk_of_planned_joints_reproduces_the_probe_poses(plan):
    # Frames at multiples of 0.1 s coincide with joint samples (30 Hz and 100 Hz grids).
    k = np.arange(0, plan.n_frames, 3)
    j = np.searchsorted(plan.joint_times_ns, plan.frame_times_ns[k])
    assert np.array_equal(plan.joint_times_ns[j], plan.frame_times_ns[k])
    fk = forward_kinematics(plan.joint_positions_rad[j]) @ T_EE_PROBE
    assert np.linalg.norm(fk[:, :3, 3] - plan.T_base_probe[k, :3, 3], axis=1).max() < 0.1
    assert _rotation_deg(fk, plan.T_base_probe[k]).max() < 0.05


def test_probe_follows_the_sweep_path_at_constant_speed(toy_spine, plan):
    T_base_spine = default_table_pose() @ table_from_spine(toy_spine)
    np.testing.assert_allclose(plan.T_base_spine, T_base_spine)
    np.testing.assert_allclose(plan.T_base_probe, T_base_spine @ plan.T_spine_probe, atol=1e-9)
    ends = sweep_poses(toy_spine, 2, margin_mm=SWEEP_MARGIN_MM)
    np.testing.assert_allclose(plan.T_spine_probe[[0, -1]], ends, atol=1e-6)
    step = np.linalg.norm(np.diff(plan.T_spine_probe[:, :3, 3], axis=0), axis=1)
    np.testing.assert_allclose(step, plan.speed_mm_s / RATES["frame_rate_hz"], rtol=1e-3)
    assert abs(plan.speed_mm_s - 20.0) < 20.0 / plan.n_frames
    # the toy sweep runs straight along z, so its length is the z travel
    assert plan.path_length_mm == pytest.approx(abs(ends[0, 2, 3] - ends[1, 2, 3]), rel=1e-6)


def test_timing_grids_and_joint_trajectory_are_valid(plan):
    np.testing.assert_array_equal(np.diff(plan.joint_times_ns), 10_000_000)
    assert np.abs(np.diff(plan.frame_times_ns) - 1e9 / 30).max() <= 1
    assert plan.joint_times_ns[0] == plan.frame_times_ns[0] == 0
    assert plan.frame_times_ns[-1] <= plan.duration_ns < plan.frame_times_ns[-1] + 10_000_000
    assert np.all(np.abs(plan.joint_positions_rad) <= JOINT_LIMITS_RAD)
    speed = np.abs(np.diff(plan.joint_positions_rad, axis=0)) * 100.0
    assert np.all(speed < JOINT_SPEED_LIMITS_RAD_S)
    assert plan.max_position_error_mm < 1e-2


def test_joint_interpolation_is_linear_between_samples(plan):
    t = (plan.joint_times_ns[4] + plan.joint_times_ns[5]) // 2
    want = 0.5 * (plan.joint_positions_rad[4] + plan.joint_positions_rad[5])
    np.testing.assert_allclose(plan.joint_positions_at(t)[0], want, atol=1e-12)


def test_plan_is_deterministic(toy_spine, plan):
    again = _plan(toy_spine)
    for field in dataclasses.fields(plan):
        np.testing.assert_array_equal(getattr(again, field.name), getattr(plan, field.name))


def test_n_frames_sets_the_speed(toy_spine):
    small = _plan(toy_spine, n_frames=12)
    assert small.n_frames == 12
    assert small.speed_mm_s == pytest.approx(small.path_length_mm * 30.0 / 11)


def test_spine_table_frame_is_used_when_present(toy_spine):
    T_table_spine = transform_from_xyz_rpy([5.0, 150.0, -10.0], [1.0, -2.0, 3.0])
    spine = dataclasses.replace(toy_spine, frames={"T_table_spine": T_table_spine.tolist()})
    np.testing.assert_allclose(table_from_spine(spine), T_table_spine)
    centred = table_from_spine(toy_spine)  # no frame: mean body centroid 140 mm above the top
    centre = np.mean([v.body_centroid_mm for v in toy_spine.vertebrae.values()], axis=0)
    np.testing.assert_allclose(centred[:3, :3] @ centre + centred[:3, 3], [0.0, 140.0, 0.0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"T_base_table": transform_from_xyz_rpy([2000, 0, 0], [90, 0, 180])}, "unreachable"),
        ({"n_frames": 2, "frame_rate_hz": 100.0}, "over its limit"),
        ({"n_frames": 1}, "expected n_frames >= 2"),
        ({"sweep_speed_mm_s": 0.0}, "sweep_speed_mm_s"),
        ({"frame_rate_hz": -1.0}, "frame_rate_hz"),
        ({"T_base_table": np.eye(3)}, r"T_base_table as a \(4, 4\) transform"),
    ],
)
def test_bad_plans_raise_clear_errors(toy_spine, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _plan(toy_spine, **kwargs)


def test_serpentine_passes_are_shifted_laterally_and_alternate(toy_spine):
    offsets = (-20.0, 0.0, 20.0)
    plan = _plan(toy_spine, lateral_offsets_mm=offsets)
    ends = sweep_poses(toy_spine, 2, margin_mm=SWEEP_MARGIN_MM)
    one_pass = abs(ends[0, 2, 3] - ends[1, 2, 3])
    # three straight passes plus two 20 mm lateral moves
    assert plan.path_length_mm == pytest.approx(3 * one_pass + 40.0, rel=1e-6)
    p = plan.T_spine_probe[:, :3, 3]
    x_rel = p[:, 0] - ends[0, 0, 3]
    # first pass at -20 mm from the first end, last pass at +20 mm ending where a
    # single pass ends (odd number of passes)
    np.testing.assert_allclose(plan.T_spine_probe[0, :3, 3], ends[0, :3, 3] + [-20, 0, 0])
    np.testing.assert_allclose(plan.T_spine_probe[-1, :3, 3], ends[1, :3, 3] + [20, 0, 0])
    # frames stay on the three lines or on the moves between them, at constant speed
    on_line = np.isclose(x_rel[:, None], np.array(offsets)[None], atol=1e-6).any(axis=1)
    at_end = np.isclose(p[:, 2], ends[0, 2, 3]) | np.isclose(p[:, 2], ends[1, 2, 3])
    assert np.all(on_line | at_end)
    step = np.linalg.norm(np.diff(p, axis=0), axis=1)
    np.testing.assert_allclose(step, plan.speed_mm_s / RATES["frame_rate_hz"], rtol=1e-2)
    # orientation is held through the whole sweep (the toy path is straight)
    assert _rotation_deg(plan.T_spine_probe[:1], plan.T_spine_probe).max() < 1e-6


@pytest.mark.parametrize(
    ("offsets", "match"),
    [((), "at least one finite lateral offset"), ((0.0, float("nan")), "finite lateral")],
    ids=["empty", "nan"],
)
def test_bad_lateral_offsets(toy_spine, offsets, match) -> None:
    with pytest.raises(ValueError, match=match):
        _plan(toy_spine, lateral_offsets_mm=offsets)
