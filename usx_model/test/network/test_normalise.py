"""Observation-based normalisation: round trips, scale rule and canonical frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from usx_model.network.normalise import canonical_rotation, denormalise, fit_normaliser, normalise

RAND9 = np.random.default_rng(5).random((9, 3))


def posterior_patch(seed: int = 0, n: int = 500) -> np.ndarray:
    """An anisotropic, skewed cloud: x widest, y thin with a posterior (+y) tail, z middle."""
    rng = np.random.default_rng(seed)
    pts = rng.normal(size=(n, 3)) * [30.0, 3.0, 12.0]
    pts[:, 1] += rng.exponential(4.0, size=n)  # spinous-process-like posterior tail
    pts[:, 2] += 0.05 * pts[:, 2] ** 2 / 12.0  # break the z symmetry
    return pts + [5.0, 40.0, -20.0]


def test_round_trip_numpy_and_torch() -> None:
    pts = posterior_patch()
    n = fit_normaliser(pts)
    np.testing.assert_allclose(denormalise(normalise(pts, n), n), pts, atol=1e-4)
    t = torch.from_numpy(pts)
    torch.testing.assert_close(n.denormalise(n.normalise(t)), t)


def test_centre_and_scale_from_observation_only() -> None:
    pts = posterior_patch()
    n = fit_normaliser(pts)
    np.testing.assert_allclose(n.centre_mm, pts.mean(0))
    assert n.scale_mm == pytest.approx(np.ptp(pts[:, 0]) + 30.0)
    out = normalise(pts, n)
    assert abs(out).max() < 1.0 and out.dtype == np.float32


def test_pca_frame_is_rotation_and_axes_ordered() -> None:
    pts = posterior_patch()
    r = canonical_rotation(pts)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    # The patch is already LPS-aligned, so the PCA frame must be (close to) identity.
    np.testing.assert_allclose(r, np.eye(3), atol=0.05)


@pytest.mark.parametrize("hints", [False, True], ids=["skew_signs", "given_hints"])
def test_pca_canonical_frame_is_equivariant(hints: bool) -> None:
    pts = posterior_patch(1)
    rot = Rotation.from_euler("xyz", [40, -70, 120], degrees=True).as_matrix()
    moved = pts @ rot.T + [100.0, -50.0, 7.0]
    kw0 = {"probe_direction": [0, 1, 0], "superior_direction": [0, 0, 1]} if hints else {}
    kw1 = {k: rot @ np.asarray(v, float) for k, v in kw0.items()}
    n0 = fit_normaliser(pts, "pca", **kw0)
    n1 = fit_normaliser(moved, "pca", **kw1)
    np.testing.assert_allclose(normalise(moved, n1), normalise(pts, n0), atol=1e-4)
    assert n1.scale_mm == pytest.approx(n0.scale_mm)


def test_given_rotation() -> None:
    pts = posterior_patch()
    rot = Rotation.from_euler("z", 30, degrees=True).as_matrix()
    n = fit_normaliser(pts @ rot.T, "given", rotation=rot.T)
    np.testing.assert_allclose(
        normalise(pts @ rot.T, n), normalise(pts, fit_normaliser(pts)), atol=1e-5
    )


@pytest.mark.parametrize(
    ("args", "kw", "match"),
    [
        ((np.zeros((5, 2)),), {}, r"expected \(N, 3\) float points, got \(5, 2\)"),
        ((np.full((5, 3), np.nan),), {}, "NaN or Inf"),
        ((np.zeros((0, 3)),), {}, "expected at least 1 points, got 0"),
        ((RAND9,), {"canonicalise": "given"}, "needs a \\(3, 3\\) rotation"),
        (
            (RAND9,),
            {"canonicalise": "given", "rotation": np.diag([1.0, 1, -1])},
            "reflection",
        ),
        (
            (RAND9,),
            {"canonicalise": "given", "rotation": np.ones((3, 3))},
            "orthonormal",
        ),
        (
            (RAND9,),
            {"canonicalise": "pca", "probe_direction": [0, 0, 0]},
            "non-zero 3-vector",
        ),
        ((RAND9,), {"canonicalise": "sideways"}, "'sideways' is not a valid"),
    ],
    ids=[
        "shape",
        "nan",
        "empty",
        "no_rotation",
        "reflection",
        "not_orthonormal",
        "zero_hint",
        "mode",
    ],
)
def test_bad_input(args, kw, match) -> None:
    with pytest.raises(ValueError, match=match):
        fit_normaliser(*args, **kw)
