"""Local planes (base/planes.py) against numpy's eigen-solver and a direct sum."""

import numpy as np

from usx_model.base.planes import scatter_matrices, smallest_eigenvectors


def test_smallest_eigenvectors_match_eigh_and_flag_degenerate_fits():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(500, 3, 6)) * [[1.0], [3.0], [0.2]]
    cov = m @ np.swapaxes(m, 1, 2)
    got = smallest_eigenvectors(cov)
    ref = np.linalg.eigh(cov)[1][:, :, 0]
    np.testing.assert_allclose(np.abs(np.einsum("ni,ni->n", got, ref)), 1.0, atol=1e-6)
    # collinear points, coincident points: no plane
    line = np.outer([-1.0, 0.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    line -= line.mean(axis=0)
    degenerate = np.stack([line.T @ line, np.zeros((3, 3))])
    assert np.all(np.isnan(smallest_eigenvectors(degenerate)))


def test_scatter_matrices_against_a_direct_sum():
    rng = np.random.default_rng(4)
    nb = rng.normal(size=(7, 5, 3))
    want = np.stack([(n - n.mean(0)).T @ (n - n.mean(0)) for n in nb])
    np.testing.assert_allclose(scatter_matrices(nb), want, rtol=0, atol=1e-12)
