"""Point-to-plane ICP: recovers known transforms from 10 mm / 10 deg off; bad input."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import (
    apply_transform,
    invert_transform,
    make_transform,
    perturbation,
)
from usx_model.evaluation.registration import transform_errors
from usx_model.registration.icp import register_cbct_to_us, register_point_to_plane


def _bumpy_surface(n=6000):
    """An asymmetric bumpy ellipsoid (no symmetry for ICP to slide along): points, normals."""
    mesh = o3d.geometry.TriangleMesh.create_sphere(1.0, 60)
    v = np.asarray(mesh.vertices)
    r = 1.0 + 0.15 * np.sin(3 * v[:, 0] + 1) * np.cos(2 * v[:, 1]) + 0.1 * v[:, 2] ** 2
    mesh.vertices = o3d.utility.Vector3dVector(v * r[:, None] * [40.0, 25.0, 60.0])
    mesh.compute_vertex_normals()
    o3d.utility.random.seed(0)
    pc = mesh.sample_points_uniformly(n)
    return np.asarray(pc.points), np.asarray(pc.normals)


TARGET, NORMALS = _bumpy_surface()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_recovers_known_transform(seed):
    rng = np.random.default_rng(seed)
    # the source sees only one side (y > 0) of the surface, with noise, in its own frame
    part = TARGET[TARGET[:, 1] > 0][::2]
    T_true = make_transform(
        Rotation.random(random_state=seed).as_matrix(), rng.uniform(-200, 200, 3)
    )
    src = apply_transform(invert_transform(T_true), part + rng.normal(0, 0.2, part.shape))
    T_init = perturbation(rng, part.mean(axis=0), 10.0, 10.0) @ T_true
    res = register_point_to_plane(src, TARGET, NORMALS, T_init)
    ang, d = transform_errors(res.T_target_source, T_true, src.mean(axis=0))
    assert ang < 0.2 and d < 0.2
    assert res.converged and res.fitness > 0.95 and res.inlier_rmse_mm < 0.5
    assert [s[0] for s in res.stages] == [20.0, 10.0, 5.0, 2.0]


def test_no_correspondence_keeps_the_start():
    T_init = make_transform(np.eye(3), [500.0, 0, 0])
    res = register_point_to_plane(TARGET[:50], TARGET, NORMALS, T_init, schedule_mm=(2.0,))
    np.testing.assert_array_equal(res.T_target_source, T_init)
    assert res.fitness == 0.0 and not res.converged


def test_cbct_to_us_returns_base_from_cbct():
    rng = np.random.default_rng(9)
    T_base_cbct = make_transform(Rotation.random(random_state=9).as_matrix(), [300.0, -50, 20])
    us_base = apply_transform(T_base_cbct, TARGET[TARGET[:, 1] > 10])
    T0 = perturbation(rng, us_base.mean(axis=0), 5.0, 5.0) @ T_base_cbct
    T, res = register_cbct_to_us(TARGET, NORMALS, us_base, T0)
    ang, d = transform_errors(T, T_base_cbct, TARGET.mean(axis=0))
    assert ang < 0.1 and d < 0.1
    np.testing.assert_allclose(T @ res.T_target_source, np.eye(4), atol=1e-9)


P = np.random.default_rng(0).normal(size=(10, 3))
N = P / np.linalg.norm(P, axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"source_points": P[:, :2]},
            r"expected source_points as \(N, 3\) float points, got \(10, 2\)",
        ),
        ({"source_points": P[:2]}, "source_points needs at least 3 points, got 2"),
        ({"target_points": np.full((10, 3), np.nan)}, "target_points contains non-finite"),
        ({"target_normals": N[:5]}, r"expected target_normals of shape \(10, 3\), got \(5, 3\)"),
        ({"T_init": np.full((4, 4), np.nan)}, "T_init has non-finite entries"),
        ({"T_init": np.diag([1.0, 1, 2, 1])}, "T_init rotation block is not a proper rotation"),
        ({"schedule_mm": (2.0, 5.0)}, "decreasing, positive schedule_mm"),
        ({"schedule_mm": ()}, "non-empty"),
        ({"max_iterations": 0}, "max_iterations must be >= 1"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"source_points": P, "target_points": P, "target_normals": N, **kwargs}
    with pytest.raises(ValueError, match=match):
        register_point_to_plane(**args)
