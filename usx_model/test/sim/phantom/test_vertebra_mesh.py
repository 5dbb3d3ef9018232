from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from usx_model.base.parts import Part
from usx_model.sim.phantom.mesh_ops import largest_component, orient_outward
from usx_model.sim.phantom.morphometry import level_means, sample_spine_morphometry
from usx_model.sim.phantom.vertebra_mesh import MeshOptions, vertebra_mesh


def _o3d(m):
    return o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(m.vertices_mm), o3d.utility.Vector3iVector(m.faces)
    )


@pytest.fixture(scope="module")
def batch():
    out = []
    for seed in range(3):
        _, params = sample_spine_morphometry(np.random.default_rng(100 + seed))
        out += [vertebra_mesh(params[lv], lv) for lv in range(1, 6)]
    return out


def _closed_and_consistently_oriented(faces: np.ndarray) -> bool:
    """Reference check: every directed edge appears once and its reverse once."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    n = int(faces.max()) + 1
    key, rev = e[:, 0] * n + e[:, 1], e[:, 1] * n + e[:, 0]
    return len(np.unique(key)) == len(e) and bool(np.isin(rev, key).all())


def test_batch_is_closed_manifold_single_component_and_outward(batch):
    for m in batch:
        om = _o3d(m)
        assert _closed_and_consistently_oriented(m.faces)
        assert om.is_edge_manifold(allow_boundary_edges=False) and om.is_vertex_manifold()
        _, counts, _ = om.cluster_connected_triangles()
        assert len(counts) == 1
        # Counter-clockwise from outside: positive divergence-theorem volume. (open3d's
        # get_volume would rerun its slow self-intersection test.)
        v = m.vertices_mm[m.faces]
        assert np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() > 0
        assert 5_000 < len(m.vertices_mm) < 30_000


def test_open3d_watertight_including_self_intersection():
    # open3d's self-intersection test is quadratic-ish (~3 s at 0.9 mm): two coarse meshes.
    for seed, level in ((7, 1), (8, 5)):
        _, params = sample_spine_morphometry(np.random.default_rng(seed))
        assert _o3d(vertebra_mesh(params[level], level, MeshOptions(1.3))).is_watertight()


def test_every_part_is_labelled(batch):
    for m in batch:
        assert m.part.dtype == np.uint8
        assert set(np.unique(m.part)) == {int(p) for p in Part}


def test_parts_sit_where_anatomy_puts_them(batch):
    for m in batch:
        y = {p: m.vertices_mm[m.part == p, 1].mean() for p in Part}
        # Body anterior, pedicles next, spinous process most posterior (y = posterior).
        assert y[Part.BODY] < y[Part.PEDICLE] < y[Part.LAMINA] < y[Part.SPINOUS]
        x_tp = np.abs(m.vertices_mm[m.part == Part.TRANSVERSE, 0]).max()
        assert x_tp == pytest.approx(np.abs(m.vertices_mm[:, 0]).max())
        z = {p: m.vertices_mm[m.part == p, 2].mean() for p in Part}
        assert z[Part.SUPERIOR_ARTICULAR] > z[Part.INFERIOR_ARTICULAR]


def test_centroids_are_inside_the_expected_regions(batch):
    for m in batch:
        # Body centre of the vertebra frame is the origin; the arch pulls the whole
        # vertebra's centroid posteriorly.
        assert np.linalg.norm(m.body_centroid_mm) < 2.0
        assert m.centroid_mm[1] > m.body_centroid_mm[1] + 5.0


def test_mean_anatomy_body_width_matches_morphometry():
    p = level_means(3)
    m = vertebra_mesh(p, 3)
    body = m.vertices_mm[m.part == Part.BODY]
    assert np.ptp(body[:, 0]) == pytest.approx(p["body_width_mm"], abs=2.0)


def test_finer_spacing_gives_more_vertices_and_same_shape():
    p = level_means(1)
    coarse = vertebra_mesh(p, 1, MeshOptions(1.2))
    fine = vertebra_mesh(p, 1, MeshOptions(0.8))
    assert len(fine.vertices_mm) > 1.8 * len(coarse.vertices_mm)
    np.testing.assert_allclose(
        np.ptp(fine.vertices_mm, axis=0), np.ptp(coarse.vertices_mm, axis=0), atol=1.5
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": 0}, "expected a lumbar level 1..5"),
        ({"options": MeshOptions(0.0)}, "expected spacing_mm > 0"),
        ({"params": {"body_width_mm": 40.0}}, "morphometry is missing parameters"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"params": level_means(1), "level": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        vertebra_mesh(args["params"], args["level"], args.get("options"))


def test_largest_component_and_orientation_against_hand_built_meshes():
    tet_v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float)
    tet_f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    # Square pyramid (6 triangles, outward) beats the tetrahedron (4 triangles).
    pyr_v = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.5, 1]]) + 10
    pyr_f = np.array([[0, 2, 1], [0, 3, 2], [0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]])
    verts = np.concatenate([tet_v, pyr_v])
    faces = np.concatenate([tet_f, pyr_f + 4])
    v, f = largest_component(verts, faces)
    np.testing.assert_array_equal(v, pyr_v)
    np.testing.assert_array_equal(f, pyr_f)
    np.testing.assert_array_equal(orient_outward(v, f), f)
    np.testing.assert_array_equal(orient_outward(v, f[:, ::-1]), f)
    assert _closed_and_consistently_oriented(f)
    assert not _closed_and_consistently_oriented(f[1:])  # a hole
    assert not _closed_and_consistently_oriented(np.concatenate([f[:1, ::-1], f[1:]]))
