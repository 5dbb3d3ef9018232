"""completion.quality: features against brute-force references, verdicts table-driven,
bad input with its message, and the gate on a phantom vertebra."""

from __future__ import annotations

import math

import numpy as np
import pytest

from usx_model.completion.quality import (
    COVERAGE_MM,
    DORSAL_DEPTH_MM,
    FEATURES,
    INSUFFICIENT_US,
    INSUFFICIENT_XRAY,
    LOW_CONFIDENCE,
    OK,
    RIDGE_FRACTION,
    US_ONLY_FALLBACK,
    GateThresholds,
    assess,
    level_frame,
    quality_features,
)
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.scene import sample_surface
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import body_points_25d


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def _naive(us, pred, R, xr, uo):
    """The features by explicit loops over point pairs."""
    L, P, S = R
    depth = [p @ P for p in pred]
    dorsal = [p for p, d in zip(pred, depth, strict=True) if d >= max(depth) - DORSAL_DEPTH_MM]
    covered = [min(np.linalg.norm(u - p) for u in us) <= COVERAGE_MM for p in dorsal]
    fit = sorted(min(np.linalg.norm(u - p) for p in pred) for u in us)
    mid = np.median([p @ L for p in pred])
    left = sum(u @ L > mid for u in us)
    right = len(us) - left
    span = lambda a: np.percentile(a, 95) - np.percentile(a, 5)  # noqa: E731
    lat = [u @ L for u in us]
    n_ridge = math.ceil(RIDGE_FRACTION * len(us))  # the posterior-most, ties aside
    ridge = [u @ L for u in sorted(us, key=lambda u: u @ P)[-n_ridge:]]
    return {
        "arch_coverage": sum(covered) / len(dorsal),
        "us_fit_mm": float(np.median(fit)),
        "lateral_balance": min(left, right) / max(left, right),
        "lateral_extent": span(lat) / span([p @ L for p in pred]),
        "ridge_offset": (np.median(ridge) - np.median(lat)) / span(lat),
        "xray_depth_mm": np.median([u @ P for u in us]) - np.median([x @ P for x in xr]),
        "xray_cranial_mm": np.median([x @ S for x in xr])
        - np.median([p @ S for p in pred if p @ P <= np.percentile([x @ P for x in xr], 95)]),
        "xray_level_mm": np.median([x @ S for x in xr])
        - np.median([p @ S for p in uo if p @ P <= np.percentile([x @ P for x in xr], 95)]),
        "xray_arch_mm": np.median([x @ S for x in xr]) - np.median([u @ S for u in us]),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_match_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    R = _rotation(seed)
    pred = rng.normal(0.0, 15.0, (300, 3))
    us = pred[rng.choice(300, 120, replace=False)] + rng.normal(0.0, 1.0, (120, 3))
    xr = rng.normal(0.0, 8.0, (50, 3)) - 30.0 * R[1]
    unc = rng.uniform(0.1, 1.0, 300)
    uo = rng.normal(0.0, 15.0, (200, 3))
    got = quality_features(us, pred, R, xr, unc, uo)
    assert list(got) == list(FEATURES)
    for k, v in _naive(us, pred, R, xr, uo).items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-9), k
    assert got["us_points"] == 120 and got["xray_points"] == 50
    assert got["spread_mm"] == pytest.approx(unc.mean())


def test_without_xray_or_uncertainty_those_features_are_nan():
    rng = np.random.default_rng(0)
    pred = rng.normal(0.0, 15.0, (100, 3))
    f = quality_features(pred[:40], pred, np.eye(3))
    assert f["xray_points"] == 0
    nan = ("xray_depth_mm", "xray_cranial_mm", "xray_level_mm", "xray_arch_mm", "spread_mm")
    assert all(math.isnan(f[k]) for k in nan)


_GOOD = {
    "us_points": 4000.0,
    "xray_points": 9000.0,
    "arch_coverage": 0.9,
    "lateral_balance": 0.9,
    "lateral_extent": 1.2,
    "ridge_offset": -0.03,
    "us_fit_mm": 0.8,
    "xray_depth_mm": 35.0,
    "xray_cranial_mm": 2.0,
    "xray_level_mm": -1.0,
    "xray_arch_mm": 1.5,
    "spread_mm": 0.5,
}


@pytest.mark.parametrize(
    ("change", "used_xray", "status", "says"),
    [
        ({}, True, OK, ""),
        ({}, False, US_ONLY_FALLBACK, "US-only"),
        ({"us_points": 40.0}, True, INSUFFICIENT_US, "40 US points"),
        ({"arch_coverage": 0.0}, True, INSUFFICIENT_US, "arch coverage 0.00"),
        ({"lateral_extent": 0.5}, True, INSUFFICIENT_US, "lateral extent 0.50"),
        ({"arch_coverage": math.nan}, True, INSUFFICIENT_US, "arch coverage nan"),
        ({"ridge_offset": -0.35}, True, INSUFFICIENT_US, "spinous ridge at -0.35"),
        ({"ridge_offset": 0.2}, True, INSUFFICIENT_US, "spinous ridge at +0.20"),
        ({"ridge_offset": math.nan}, True, INSUFFICIENT_US, "spinous ridge at +nan"),
        ({"xray_points": 3.0}, True, INSUFFICIENT_XRAY, "3 X-ray points"),
        ({"xray_depth_mm": 55.0}, True, INSUFFICIENT_XRAY, "55.0 mm anterior"),
        ({"xray_depth_mm": 10.0}, True, INSUFFICIENT_XRAY, "10.0 mm anterior"),
        ({"xray_cranial_mm": -25.0}, True, INSUFFICIENT_XRAY, "-25.0 mm cranial"),
        ({"xray_level_mm": 20.0}, True, INSUFFICIENT_XRAY, "20.0 mm cranial to the body the US"),
        ({"xray_level_mm": -14.0}, True, INSUFFICIENT_XRAY, "-14.0 mm cranial to the body"),
        ({"xray_level_mm": math.nan}, True, OK, ""),  # no US-only model: not checked
        ({"xray_arch_mm": 16.0}, True, INSUFFICIENT_XRAY, "16.0 mm cranial to the US points"),
        ({"xray_arch_mm": -15.0}, True, INSUFFICIENT_XRAY, "-15.0 mm cranial to the US"),
        ({"xray_depth_mm": 45.0}, True, LOW_CONFIDENCE, "weakest xray_depth_mm"),
        ({"xray_depth_mm": 20.0}, True, LOW_CONFIDENCE, "weakest xray_depth_mm"),
        ({"xray_level_mm": 30.0}, False, US_ONLY_FALLBACK, "US-only"),  # X-ray unused
        ({"xray_depth_mm": 55.0}, False, US_ONLY_FALLBACK, "US-only"),  # X-ray unused
        ({"us_fit_mm": 3.5}, True, LOW_CONFIDENCE, "weakest us_fit_mm"),
        ({"arch_coverage": 0.1}, True, LOW_CONFIDENCE, "weakest arch_coverage"),
        # a 400-point patch of the arch spans about 0.8-0.95 of the vertebra's width
        ({"lateral_extent": 0.9}, True, LOW_CONFIDENCE, "weakest lateral_extent"),
        ({"lateral_extent": 0.84}, True, INSUFFICIENT_US, "lateral extent 0.84"),
        ({"ridge_offset": 0.17}, True, LOW_CONFIDENCE, "weakest ridge_offset"),
        ({"ridge_offset": -0.17}, False, LOW_CONFIDENCE, "weakest ridge_offset"),
        ({"xray_cranial_mm": 10.0}, True, LOW_CONFIDENCE, "weakest xray_cranial_mm"),
        ({"xray_level_mm": 12.0}, True, LOW_CONFIDENCE, "weakest xray_level_mm"),
        ({"xray_arch_mm": 13.0}, True, LOW_CONFIDENCE, "weakest xray_arch_mm"),
    ],
)
def test_verdicts(change, used_xray, status, says):
    q = assess({**_GOOD, **change}, used_xray)
    assert q.status == status
    assert says in q.message
    assert (q.confidence >= 0.5) == (status in (OK, US_ONLY_FALLBACK))
    assert 0.0 <= q.confidence <= 1.0


def test_confidence_is_the_weakest_ramp():
    # coverage ramp (0.05 -> 0.25): 0.15 is half-way; everything else passes
    q = assess({**_GOOD, "arch_coverage": 0.15}, True)
    assert q.confidence == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: quality_features(np.zeros((5, 2)), np.zeros((9, 3)), np.eye(3)),
            "expected us_mm as (N, 3) float points, got (5, 2)",
        ),
        (
            lambda: quality_features(np.full((5, 3), np.nan), np.zeros((9, 3)), np.eye(3)),
            "us_mm contains non-finite values",
        ),
        (
            lambda: quality_features(np.zeros((5, 3)), np.zeros(9), np.eye(3)),
            "expected pred_mm as (N, 3) float points, got (9,)",
        ),
        (
            lambda: quality_features(np.zeros((5, 3)), np.zeros((9, 3)), np.eye(3), np.ones(3)),
            "expected xray_mm as (N, 3) float points",
        ),
        (
            lambda: quality_features(np.zeros((5, 3)), np.zeros((9, 3)), 2 * np.eye(3)),
            "R_lps: expected a (3, 3) rotation",
        ),
        (
            lambda: quality_features(np.zeros((5, 3)), np.zeros((9, 3)), np.eye(3), None, [1.0]),
            "uncertainty_mm: expected 9 values, got 1",
        ),
        (lambda: GateThresholds(coverage=(0.3, 0.3)), "coverage: expected (fail, pass)"),
        (lambda: GateThresholds(us_fit_mm=(-1.0, 2.0)), "us_fit_mm: expected (fail, pass)"),
        (lambda: GateThresholds(ridge_offset=(0.1, 0.1)), "ridge_offset: expected (fail, pass)"),
        (lambda: GateThresholds(xray_level_mm=(8.0, 8.0)), "xray_level_mm: expected (fail, pass)"),
        (
            lambda: quality_features(
                np.zeros((5, 3)), np.zeros((9, 3)), np.eye(3), np.zeros((4, 3)), None, np.ones(3)
            ),
            "expected us_only_mm as (N, 3) float points",
        ),
        (lambda: GateThresholds(xray_depth_mm=(30, 20, 40, 50)), "xray_depth_mm: expected"),
        (lambda: GateThresholds(min_us_points=0), "min_us_points and min_xray_points"),
    ],
)
def test_bad_input_is_refused_with_what_was_expected(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


@pytest.fixture(scope="module")
def vertebra():
    """Phantom L3 in the spine frame (LPS): its surface, dorsal surface and X-ray points."""
    v = generate_spine(11).vertebrae[3]
    surface, _ = sample_surface(v, 4096, seed=0)
    dorsal = surface[surface[:, 1] > np.percentile(surface[:, 1], 60)]
    return surface, dorsal, body_points_25d(v)


def test_a_well_observed_phantom_vertebra_is_ok(vertebra):
    surface, dorsal, xray = vertebra
    q = assess(quality_features(dorsal, surface, np.eye(3), xray), used_xray=True)
    assert q.status == OK, q.message
    assert q.confidence == 1.0


def test_a_grazed_level_is_insufficient_us(vertebra):
    # 143 points around one spot: what the sweep saw of the real L4 that scored 9.2 mm.
    surface, dorsal, xray = vertebra
    spot = dorsal[np.argsort(np.linalg.norm(dorsal - dorsal[0], axis=1))[:143]]
    q = assess(quality_features(spot, surface, np.eye(3), xray), used_xray=True)
    assert q.status == INSUFFICIENT_US and q.confidence == 0.0


def test_an_xray_half_a_level_off_is_caught_by_the_us_only_body(vertebra):
    # The full model moved its body to the X-ray (pred = the truth shifted with it); the
    # US-only model's body stays where the arch puts it (here: the truth).
    surface, dorsal, xray = vertebra
    up = np.array([0.0, 0.0, 15.0])
    f = quality_features(dorsal, surface + up, np.eye(3), xray + up, None, surface)
    assert f["xray_cranial_mm"] == pytest.approx(
        quality_features(dorsal, surface, np.eye(3), xray)["xray_cranial_mm"]
    )
    assert f["xray_level_mm"] == pytest.approx(15.0, abs=1.5)
    q = assess(f, used_xray=True)
    assert q.status == INSUFFICIENT_XRAY and "another level" in q.message
    f = quality_features(dorsal, surface, np.eye(3), xray, None, surface)
    assert abs(f["xray_level_mm"]) < 3.0 and assess(f, used_xray=True).status == OK


def test_an_xray_one_level_off_is_insufficient_xray(vertebra):
    surface, dorsal, xray = vertebra
    shifted = xray + np.array([0.0, 0.0, 32.0])
    q = assess(quality_features(dorsal, surface, np.eye(3), shifted), used_xray=True)
    assert q.status == INSUFFICIENT_XRAY and q.confidence == 0.0


@pytest.fixture(scope="module")
def us_view():
    """What the simulated probe sees of the same phantom L3 (spine frame, LPS, mm)."""
    return simulate_us_partials(generate_spine(11), seed=0)[3].points_mm


def test_one_lateral_half_of_the_arch_is_insufficient_us(vertebra, us_view):
    # The probe ran off the midline: the spinous processes lie at the edge of what it saw.
    surface, _, xray = vertebra
    whole = quality_features(us_view, surface, np.eye(3), xray)
    assert abs(whole["ridge_offset"]) < 0.05
    assert assess(whole, used_xray=True).status == OK
    spinous_x = np.median(us_view[us_view[:, 1] >= np.quantile(us_view[:, 1], 0.95), 0])
    for half in (us_view[:, 0] > spinous_x, us_view[:, 0] < spinous_x):
        f = quality_features(us_view[half], surface, np.eye(3), xray)
        assert abs(f["ridge_offset"]) > 0.3
        q = assess(f, used_xray=True)
        assert q.status == INSUFFICIENT_US and "spinous ridge" in q.message


def test_level_frame_follows_the_local_spine_tangent():
    R = np.eye(3)  # rows L, P, S
    # lordosis: L4 -> L5 tilts 30 degrees towards posterior going caudal
    tilt = math.radians(30.0)
    centroids = {
        3: np.array([0.0, 0.0, 70.0]),
        4: np.array([0.0, 0.0, 35.0]),
        5: np.array([0.0, 35.0 * math.sin(tilt), 35.0 - 35.0 * math.cos(tilt)]),
    }
    F = level_frame(R, centroids, 5)  # tangent through L4 and L5
    s = centroids[4] - centroids[5]
    assert np.allclose(F[2], s / np.linalg.norm(s))
    assert np.allclose(F @ F.T, np.eye(3), atol=1e-12) and np.linalg.det(F) > 0
    assert np.allclose(F[0], R[0])  # lateral kept
    assert np.allclose(level_frame(R, centroids, 4)[2], [0.0, -np.sin(tilt / 2), np.cos(tilt / 2)])
    # a lateral tangent component is removed; too few centroids give the spine's frame
    side = {4: np.array([10.0, 0.0, 35.0]), 5: np.zeros(3)}
    assert np.allclose(level_frame(R, side, 5), R)
    assert level_frame(R, {5: np.zeros(3)}, 5) is R and level_frame(R, centroids, 1) is R
