"""Smooth random deformation: exact amplitude, smoothness, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.sim.phantom.deform import deform_spine, smooth_displacement


def _cloud(n: int = 2000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-30.0, 30.0, (n, 3))


def test_rms_amplitude_is_exact() -> None:
    u = smooth_displacement(_cloud(), np.random.default_rng(1), 1.5, 12.0)
    assert np.sqrt(np.mean(np.sum(u**2, axis=1))) == pytest.approx(1.5, rel=1e-12)


def test_matches_a_naive_rbf_sum() -> None:
    v = _cloud(50)
    u = smooth_displacement(v, np.random.default_rng(3), 2.0, 10.0, n_centres=4)
    rng = np.random.default_rng(3)
    centres = v[rng.integers(0, len(v), 4)]
    w = rng.normal(size=(4, 3))
    ref = np.array(
        [
            sum(
                np.exp(-np.sum((p - c) ** 2) / 200.0) * wk for c, wk in zip(centres, w, strict=True)
            )
            for p in v
        ]
    )
    ref *= 2.0 / np.sqrt(np.mean(np.sum(ref**2, axis=1)))
    np.testing.assert_allclose(u, ref, rtol=1e-10)


def test_smooth_at_the_length_scale() -> None:
    """Neighbours 1 mm apart move almost together; points 60 mm apart independently."""
    v = _cloud(3000)
    u = smooth_displacement(v, np.random.default_rng(2), 1.5, 12.0)
    near = v + np.array([1.0, 0.0, 0.0])
    u_near = smooth_displacement(np.concatenate([v, near]), np.random.default_rng(2), 1.5, 12.0)
    # same centres only if drawn from the same vertices: compare within one evaluation
    a, b = u_near[: len(v)], u_near[len(v) :]
    assert np.median(np.linalg.norm(a - b, axis=1)) < 0.1 * 1.5
    assert u.shape == v.shape


def test_same_seed_same_field_and_zero_amplitude_is_identity() -> None:
    from usx_model.sim.phantom.spine import generate_spine

    spine = generate_spine(3, levels=(2,), spacing_mm=1.5)
    a = deform_spine(spine, 7, 1.5, 12.0)
    b = deform_spine(spine, 7, 1.5, 12.0)
    c = deform_spine(spine, 8, 1.5, 12.0)
    va, vb, vc = (s.vertebrae[2].vertices_mm for s in (a, b, c))
    np.testing.assert_array_equal(va, vb)
    assert not np.allclose(va, vc)
    d = np.linalg.norm(va - spine.vertebrae[2].vertices_mm, axis=1)
    assert np.sqrt(np.mean(d**2)) == pytest.approx(1.5, rel=1e-9)
    np.testing.assert_array_equal(a.vertebrae[2].faces, spine.vertebrae[2].faces)
    assert deform_spine(spine, 7, 0.0, 12.0) is spine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros((0, 3)), 1.0, 10.0), "vertices_mm: expected (V, 3) with V >= 1, got (0, 3)"),
        ((np.zeros((5, 2)), 1.0, 10.0), "vertices_mm: expected (V, 3) with V >= 1, got (5, 2)"),
        ((np.zeros((5, 3)), -1.0, 10.0), "amplitude_mm: expected a finite value >= 0, got -1.0"),
        ((np.zeros((5, 3)), np.nan, 10.0), "amplitude_mm: expected a finite value >= 0, got nan"),
        ((np.zeros((5, 3)), 1.0, 0.0), "length_mm: expected a finite value > 0, got 0.0"),
    ],
)
def test_bad_input_is_named(args, message: str) -> None:
    v, amp, length = args
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        smooth_displacement(v, np.random.default_rng(0), amp, length)
