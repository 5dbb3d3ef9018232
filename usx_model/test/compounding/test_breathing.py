"""Breathing fit on a synthetic serpentine sweep over a known surface."""

import numpy as np
import pytest

from usx_model.compounding import breathing
from usx_model.compounding.breathing import BreathingParams, estimate_breathing

AXIS = np.array([0.0, 0.0, 1.0])


def _sweep(
    peak_to_peak_mm: float, hz: float = 0.25, phase: float = 0.7, seed: int = 0, gap_s: float = 2.7
):
    """Three 180 mm passes (x offsets -20, 0, 20; serpentine in y) at 10 mm/s, 30 fps;
    each frame a 60 mm line of points on a bumpy surface with steep ridges across the
    sweep, raised by d(t) along z. The robot takes 2.7 s between passes (a pass plus the
    move lasting a whole number of breaths would see every place at the same phase)."""
    rng = np.random.default_rng(seed)
    pts, stamps, t_frames = [], [], []
    t = 0.0
    for k, x0 in enumerate((-20.0, 0.0, 20.0)):
        ys = np.arange(0.0, 180.0, 10.0 / 30.0)
        for y in ys if k % 2 == 0 else ys[::-1]:
            x = x0 + np.linspace(-30, 30, 121)
            h = 5 * np.sin(x / 7.0) + 3 * np.cos(y / 11.0) + 4 * np.sin(y / 2.5)
            d = 0.5 * peak_to_peak_mm * np.sin(2 * np.pi * hz * t + phase)
            z = h + d + rng.normal(0, 0.1, len(x))
            pts.append(np.stack([x, np.full_like(x, y), z], axis=1))
            stamps.append(np.full(len(x), int(t * 1e9)))
            t_frames.append((int(t * 1e9), d))
            t += 1 / 30
        t += gap_s  # the robot moves to the next pass
    return np.vstack(pts), np.concatenate(stamps), np.array(t_frames)


def test_recovers_the_motion_and_undoes_it():
    pts, stamps, truth = _sweep(3.0)
    fit = estimate_breathing(pts, stamps, AXIS)
    assert fit.applied
    assert fit.freq_hz == pytest.approx(0.25, abs=0.005)
    assert fit.peak_to_peak_mm == pytest.approx(3.0, abs=0.2)
    err = fit.displacement_mm(truth[:, 0].astype(np.int64)) - truth[:, 1]
    assert np.sqrt(np.mean(err**2)) < 0.15
    corrected = fit.correct(pts, stamps)
    # the corrected heights of pass 1 and pass 2 agree where they overlap
    still, _, _ = _sweep(0.0)
    assert np.sqrt(np.mean((corrected[:, 2] - still[:, 2]) ** 2)) < 0.25


def test_still_patient_is_left_alone():
    pts, stamps, _ = _sweep(0.0)
    fit = estimate_breathing(pts, stamps, AXIS)
    assert not fit.applied
    np.testing.assert_array_equal(fit.correct(pts, stamps), pts)


def test_a_sweep_timed_with_the_breath_is_not_compensated():
    # 18 s pass + 2 s move = 5 breaths at 0.25 Hz: each place is seen at one phase
    pts, stamps, _ = _sweep(3.0, gap_s=2.0)
    fit = estimate_breathing(pts, stamps, AXIS)
    assert fit.observability < 0.01 and not fit.applied


def test_axis_sign_follows_the_caller():
    pts, stamps, truth = _sweep(3.0)
    up = estimate_breathing(pts, stamps, AXIS)
    down = estimate_breathing(pts, stamps, -AXIS)
    t = truth[:, 0].astype(np.int64)
    # the flipped axis grids the plane with mirrored cells: the same fit to 0.01 mm
    np.testing.assert_allclose(down.displacement_mm(t), -up.displacement_mm(t), atol=0.01)
    np.testing.assert_allclose(down.correct(pts, stamps), up.correct(pts, stamps), atol=0.01)


def test_a_single_pass_cannot_be_fitted():
    pts, stamps, _ = _sweep(3.0)
    first = stamps < 18e9  # one pass: every cell seen within a fraction of a second
    fit = estimate_breathing(pts[first], stamps[first], AXIS, BreathingParams())
    assert not fit.applied and fit.cells == 0


@pytest.mark.parametrize(
    ("points", "stamps", "axis", "message"),
    [
        (np.zeros((4, 2)), np.zeros(4), AXIS, r"expected \(N, 3\) points"),
        (np.zeros((4, 3)), np.zeros(3), AXIS, r"expected \(N, 3\) points"),
        (np.zeros((4, 3)), np.zeros(4), np.zeros(3), "non-zero"),
        (np.zeros((4, 3)), np.zeros(4), np.array([np.nan, 0, 1]), "finite"),
    ],
)
def test_bad_input(points, stamps, axis, message):
    with pytest.raises(ValueError, match=message):
        estimate_breathing(points, stamps, axis)


@pytest.mark.parametrize("spread", [50, 10**9], ids=["dense_range", "sparse_range"])
def test_dense_rank_is_unique_inverse(spread) -> None:
    keys = np.random.default_rng(5).integers(0, spread, 2000)
    np.testing.assert_array_equal(
        breathing._dense_rank(keys), np.unique(keys, return_inverse=True)[1]
    )


def test_key_then_height_order_is_lexsort_for_distinct_heights() -> None:
    rng = np.random.default_rng(6)
    key = rng.integers(0, 40, 3000)
    h = rng.normal(0.0, 10.0, 3000)
    np.testing.assert_array_equal(breathing._by_key_then_height(key, h), np.lexsort((h, key)))
    h_tied = np.round(h)  # equal heights: same sorted values, their order is free
    order = breathing._by_key_then_height(key, h_tied)
    ref = np.lexsort((h_tied, key))
    np.testing.assert_array_equal(key[order], key[ref])
    np.testing.assert_array_equal(h_tied[order], h_tied[ref])


@pytest.mark.parametrize("ordered", [True, False], ids=["frame_order", "shuffled"])
def test_frames_is_unique_with_inverse(ordered) -> None:
    stamps = np.repeat(np.arange(50, dtype=np.int64) * 16_666_667, 7)
    if not ordered:
        stamps = np.random.default_rng(7).permutation(stamps)
    distinct, index = breathing._frames(stamps)
    ref_distinct, ref_index = np.unique(stamps, return_inverse=True)
    np.testing.assert_array_equal(distinct, ref_distinct)
    np.testing.assert_array_equal(index, ref_index)


def test_displacement_per_frame_equals_per_point_evaluation() -> None:
    fit = breathing.BreathingFit(
        np.array([0.0, 0.0, 1.0]), 0.25, np.array([1.2, -0.3, 0.1, 0.05]), 10**9, 3.0, 0.5, 9, True
    )
    stamps = np.random.default_rng(8).permutation(np.repeat(np.arange(40) * 10**8, 5) + 10**9)
    t = (stamps - fit.t0_ns) * 1e-9
    w = 2 * np.pi * fit.freq_hz
    ref = sum(
        fit.coef[2 * k] * np.sin((k + 1) * w * t) + fit.coef[2 * k + 1] * np.cos((k + 1) * w * t)
        for k in range(2)
    )
    np.testing.assert_allclose(fit.displacement_mm(stamps), ref, atol=1e-12)


def _medians_naive(cell, stamps, h):
    """{(cell, stamp): middle of the sorted heights (the upper one of an even count)}."""
    groups: dict = {}
    for c, s, v in zip(cell.tolist(), stamps.tolist(), h.tolist(), strict=True):
        groups.setdefault((c, s), []).append(v)
    return {key: sorted(vs)[len(vs) // 2] for key, vs in groups.items()}


@pytest.mark.parametrize("ordered", [True, False], ids=["frame_order", "shuffled"])
def test_cell_frame_medians_equal_a_naive_grouping(ordered) -> None:
    """Frame after frame (the compiled per-frame grouping) and shuffled (one global sort):
    odd and even groups, tied heights, cells that come back in later frames."""
    rng = np.random.default_rng(9)
    stamps = np.repeat(np.arange(60, dtype=np.int64) * 16_666_667 + 10**9, rng.integers(1, 30, 60))
    cell = rng.integers(0, 12, len(stamps)).astype(np.int64)
    h = np.round(rng.normal(0.0, 3.0, len(stamps)), 1)  # ties within groups
    if not ordered:
        order = rng.permutation(len(stamps))
        stamps, cell, h = stamps[order], cell[order], h[order]
    got_cell, got_t, got_med = breathing._cell_frame_medians(cell, stamps, h)
    got_stamps = np.round(got_t * 1e9).astype(np.int64) + stamps.min()
    keys = zip(got_cell.tolist(), got_stamps.tolist(), strict=True)
    got = dict(zip(keys, got_med.tolist(), strict=True))
    assert len(got) == len(got_cell)  # one row per group
    assert got == _medians_naive(cell, stamps, h)
