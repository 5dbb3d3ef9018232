"""Non-rigid fit of the residual fields against analytic targets."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.evaluation.realism import RealVertebra
from usx_model.evaluation.residuals import fit_displacement, without


def _sphere(n: int, radius: float, seed: int) -> np.ndarray:
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return radius * p / np.linalg.norm(p, axis=1, keepdims=True)


def test_a_sphere_is_moved_onto_a_larger_one() -> None:
    src, dst = _sphere(2000, 10.0, 0), _sphere(8000, 12.0, 1)
    u = fit_displacement(src, dst, sigmas_mm=(6.0, 4.0), iterations=4, controls=300)
    r = np.linalg.norm(src + u, axis=1)
    assert abs(r.mean() - 12.0) < 0.15 and r.std() < 0.3
    # radial, as the target is: the tangential part of the motion stays small
    radial = np.sum(u * src, axis=1) / 10.0
    assert np.linalg.norm(u - radial[:, None] * src / 10.0, axis=1).mean() < 0.3


def test_a_rigid_shift_smaller_than_the_width_is_recovered() -> None:
    src = _sphere(2000, 10.0, 2)
    dst = _sphere(8000, 10.0, 3) + [0.0, 1.5, 0.0]
    u = fit_displacement(src, dst, sigmas_mm=(20.0,), iterations=8, controls=200)
    np.testing.assert_allclose(u.mean(axis=0), [0.0, 1.5, 0.0], atol=0.15)


def test_identical_clouds_barely_move() -> None:
    src = _sphere(3000, 10.0, 4)
    u = fit_displacement(src, src.copy(), iterations=2, controls=200)
    assert np.abs(u).max() < 1e-9


@pytest.mark.parametrize(
    ("src", "dst", "message"),
    [
        (np.zeros((5, 2)), np.zeros((5, 3)), "expected \\(V, 3\\) and \\(M, 3\\)"),
        (np.zeros((3, 3)), np.zeros((9, 3)), "expected at least 4 points each"),
    ],
)
def test_bad_input_is_refused(src, dst, message) -> None:
    with pytest.raises(ValueError, match=message):
        fit_displacement(src, dst)


def _real(name: str) -> RealVertebra:
    return RealVertebra(name, 1, np.zeros((3, 3)), np.array([[0, 1, 2]]))


def test_excluded_vertebrae_are_left_out_of_the_fit() -> None:
    reals = [_real(n) for n in ("a", "b", "c")]
    assert [r.name for r in without(reals, {"b"})] == ["a", "c"]
    assert [r.name for r in without(reals, set())] == ["a", "b", "c"]
    with pytest.raises(ValueError, match=r"expected names among \['a', 'b', 'c'\], got \['z'\]"):
        without(reals, {"a", "z"})
    with pytest.raises(ValueError, match="at least one real vertebra left"):
        without(reals, {"a", "b", "c"})
