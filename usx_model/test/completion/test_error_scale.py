"""completion.error_scale: the fit recovers known coefficients; distances and files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from usx_model.completion.error_scale import (
    SHIPPED,
    ErrorScale,
    fit_error_scale,
    half_normal_quantile,
    load_error_scale,
    observed_distance,
)


def _synthetic(coef, n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.05, 2.0, n)
    d = rng.uniform(0.0, 20.0, n)
    sigma = np.exp(coef[0] + coef[1] * np.log(s) + coef[2] * np.log1p(d))
    e = np.abs(rng.normal(size=n)) * sigma  # the distance error of an isotropic 3D error
    return s, d, e, sigma


def test_sigma_is_the_formula():
    scale = ErrorScale((0.2, 0.7, 0.3))
    s, d = np.array([0.5, 1.0, 2.0]), np.array([0.0, 3.0, 10.0])
    want = [
        math.exp(0.2 + 0.7 * math.log(a) + 0.3 * math.log(1 + b)) for a, b in zip(s, d, strict=True)
    ]
    np.testing.assert_allclose(scale(s, d), want, rtol=1e-12)


def test_the_fit_recovers_known_coefficients_and_covers_at_nominal_rates():
    true = (0.4, 0.6, 0.25)
    s, d, e, _ = _synthetic(true)
    fitted = fit_error_scale(s, d, e)
    np.testing.assert_allclose(fitted.coef, true, atol=0.02)
    sigma = fitted(s, d)
    for p in (0.5, 0.68, 0.95):
        assert np.mean(e <= half_normal_quantile(p) * sigma) == pytest.approx(p, abs=0.01)


def test_the_fit_gives_no_weight_to_a_feature_the_error_ignores():
    s, d, e, _ = _synthetic((1.0, 1.0, 0.0), seed=1)
    fitted = fit_error_scale(s, d, e)
    assert abs(fitted.coef[2]) < 0.02


def test_weights_decide_which_points_the_fit_follows():
    s, d, e, _ = _synthetic((0.0, 1.0, 0.0), n=40_000, seed=3)
    s2, d2, e2, _ = _synthetic((1.0, 1.0, 0.0), n=40_000, seed=4)  # e times 2.7
    both = [np.concatenate(x) for x in ((s, s2), (d, d2), (e, e2))]
    only_first = np.r_[np.ones(40_000), np.zeros(40_000)]
    assert fit_error_scale(*both, only_first).coef[0] == pytest.approx(0.0, abs=0.03)
    # equal weights: exp(2 a0) = mean(e^2 / s^2) = (1 + e^2) / 2
    assert fit_error_scale(*both).coef[0] == pytest.approx(0.5 * math.log(4.19), abs=0.03)


def test_for_points_measures_the_distance_to_the_nearest_observed_point():
    rng = np.random.default_rng(2)
    pts, us, xray = (rng.normal(size=(n, 3)) * 10 for n in (300, 40, 25))
    spread = rng.uniform(0.1, 1.0, 300)
    scale = ErrorScale((0.0, 1.0, 0.5))

    def naive(obs):
        return np.linalg.norm(pts[:, None, :] - obs[None, :, :], axis=2).min(axis=1)

    np.testing.assert_allclose(scale.for_points(pts, spread, us), scale(spread, naive(us)))
    both = np.minimum(naive(us), naive(xray))
    np.testing.assert_allclose(scale.for_points(pts, spread, us, xray), scale(spread, both))
    np.testing.assert_allclose(observed_distance(pts, np.zeros((0, 3)), xray), naive(xray))
    # nothing observed at all: everything is far
    np.testing.assert_allclose(
        scale.for_points(pts, spread, np.zeros((0, 3))), scale(spread, np.full(300, 50.0))
    )


def test_save_and_load_round_trip_with_provenance(tmp_path):
    scale = ErrorScale((0.1, 0.9, 0.2), {"fitted_on": {"phantom": 60}})
    back = load_error_scale(scale.save(tmp_path / "s.json"))
    assert back == scale and back.provenance == {"fitted_on": {"phantom": 60}}


def test_the_shipped_coefficients_load_and_give_a_positive_finite_sigma():
    scale = load_error_scale(SHIPPED)
    sigma = scale(np.array([0.0, 0.3, 2.0]), np.array([0.0, 5.0, 40.0]))
    assert np.isfinite(sigma).all() and (sigma > 0).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "expected JSON with 'coef'"),
        (json.dumps({"a": 1}), "expected JSON with 'coef'"),
        (json.dumps({"coef": [1.0, 2.0]}), "expected three finite coefficients"),
        (json.dumps({"coef": [1.0, "nan", 0.0]}), "expected three finite coefficients"),
    ],
)
def test_a_bad_file_is_named_with_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_error_scale(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ErrorScale((0, 1, 0))(np.ones(3), np.ones(2)), "expected equal lengths"),
        (lambda: ErrorScale((0, 1, 0))(np.ones(2), -np.ones(2)), "finite values >= 0"),
        (lambda: ErrorScale((0, 1, 0))(np.array([np.nan]), np.ones(1)), "finite values >= 0"),
        (lambda: fit_error_scale(np.ones(4), np.ones(4), np.ones(3)), "error_mm: expected 4"),
        (lambda: fit_error_scale(np.ones(2), np.ones(2), np.ones(2)), "at least 3 points"),
        (lambda: fit_error_scale(*[np.ones(3)] * 3, np.zeros(3)), "not all 0"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
