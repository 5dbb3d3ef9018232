from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.evaluation.realism import (
    RealVertebra,
    align_rigid,
    best_of_n,
    chamfer_l1,
    sample_surface,
)
from usx_model.sim.phantom.morphometry import level_means
from usx_model.sim.phantom.vertebra_mesh import MeshOptions, vertebra_mesh


@pytest.fixture(scope="module")
def meshes():
    p = level_means(2)
    wide = {**p, "transverse_span_mm": p["transverse_span_mm"] + 14, "body_width_mm": 52.0}
    return [vertebra_mesh(p, 2, MeshOptions(1.2)), vertebra_mesh(wide, 2, MeshOptions(1.2))]


def test_chamfer_matches_brute_force():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(150, 3)) + 0.3
    d = np.linalg.norm(a[:, None] - b[None], axis=2)
    ref = 0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean())
    assert chamfer_l1(a, b) == pytest.approx(ref, rel=1e-12)
    assert chamfer_l1(a, a) == 0.0


def test_surface_samples_lie_on_the_triangles():
    v = np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 5.0]])
    f = np.array([[0, 2, 1], [0, 1, 3]])
    pts = sample_surface(v, f, 2000, seed=3)
    on_z0 = np.isclose(pts[:, 2], 0) & (pts[:, 0] + pts[:, 1] <= 10 + 1e-9)
    on_y0 = np.isclose(pts[:, 1], 0) & (pts[:, 0] / 10 + pts[:, 2] / 5 <= 1 + 1e-9)
    assert np.all(on_z0 | on_y0)
    # Area weighting: triangle areas 50 and 25 -> about 2/3 of the points on z = 0.
    assert np.mean(on_z0 & ~on_y0) == pytest.approx(2 / 3, abs=0.04)


def test_alignment_recovers_a_known_rigid_motion(meshes):
    pts = sample_surface(meshes[0].vertices_mm, meshes[0].faces, 2048, seed=0)
    r = Rotation.from_euler("xyz", [12, -8, 20], degrees=True).as_matrix()
    moved = pts @ r.T + np.array([30.0, -500.0, 12.0])
    t = align_rigid(pts, moved)
    assert chamfer_l1(pts @ t[:3, :3].T + t[:3, 3], moved) < 0.05
    np.testing.assert_allclose(t[:3, :3], r, atol=1e-3)


def test_best_of_n_finds_the_matching_shape(meshes):
    target = meshes[1]
    r = Rotation.from_euler("z", 25, degrees=True).as_matrix()
    real = RealVertebra("copy", 2, target.vertices_mm @ r.T + 100.0, target.faces)
    cd, i = best_of_n(real, meshes, n_points=2048, shortlist=2)
    assert i == 1
    # Two independent samplings of one surface are not identical point sets: their
    # Chamfer distance is the floor an exact match can reach.
    floor = chamfer_l1(
        sample_surface(target.vertices_mm, target.faces, 2048, seed=8),
        sample_surface(target.vertices_mm, target.faces, 2048, seed=9),
    )
    assert cd < floor + 0.1


def test_report_scores_reals_and_unseen_phantom_controls(monkeypatch):
    """A "real" vertebra that is pool member 1 is found at its seed; controls come from
    seeds the pool never used and are scored against the same pool."""
    from usx_model.evaluation import realism

    pool = realism.generated_vertebrae(2, 2, first_seed=5)
    copy = RealVertebra("copy", 2, pool[1].vertices_mm + 40.0, pool[1].faces)
    monkeypatch.setattr(realism, "load_real_vertebrae", lambda root: [copy])
    rep = realism.realism_report(n=2, first_seed=5, root="unused", control=1)
    (row,) = rep["per_vertebra"]
    floor = chamfer_l1(
        sample_surface(copy.vertices_mm, copy.faces, 4096, seed=1),
        sample_surface(copy.vertices_mm, copy.faces, 4096, seed=3),
    )
    assert row["best_seed"] == 6 and row["best_chamfer_mm"] < floor + 0.1
    (ctrl,) = rep["control"]["per_vertebra"]
    assert ctrl["name"] == f"phantom-s{5 + realism.CONTROL_SEED_OFFSET}-L2"
    assert ctrl["best_chamfer_mm"] > row["best_chamfer_mm"]
    assert rep["median_mm"] == row["best_chamfer_mm"] and rep["deform_mm"] == 0.0
