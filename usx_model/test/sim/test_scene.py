"""Tests of the shared ray-casting scene and surface sampling."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.base.parts import Part
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.scene import SpineScene, sample_surface, surface_area_mm2


@pytest.mark.parametrize(
    ("origin", "direction", "t", "normal"),
    [
        ((0, 100, 0), (0, -1, 0), 90.0, (0, 1, 0)),  # posterior face of the box at y = 10
        ((0, -100, 0), (0, 1, 0), 90.0, (0, -1, 0)),
        ((50, 0, 0), (-1, 0, 0), 30.0, (1, 0, 0)),
        ((0, 100, 0), (0, -2, 0), 90.0, (0, 1, 0)),  # direction need not be unit
    ],
)
def test_cast_hits_box_at_known_distance(make_box_spine, origin, direction, t, normal):
    scene = SpineScene(make_box_spine((-20, -10, -5), (20, 10, 5)))
    hits = scene.cast(np.array([origin], float), np.array([direction], float))
    assert hits.hit[0]
    assert hits.t_mm[0] == pytest.approx(t, abs=1e-4)
    np.testing.assert_allclose(hits.normals[0], normal, atol=1e-6)
    assert hits.cos_incidence[0] == pytest.approx(1.0, abs=1e-6)
    assert hits.level[0] == 1 and hits.part[0] == Part.BODY


def test_cast_miss_reports_no_hit(make_box_spine):
    scene = SpineScene(make_box_spine((-1, -1, -1), (1, 1, 1)))
    hits = scene.cast(np.array([[10.0, 10, 10]]), np.array([[0.0, 1, 0]]))
    assert not hits.hit[0] and np.isinf(hits.t_mm[0]) and hits.level[0] == 0
    assert np.all(np.isnan(hits.points_mm[0]))


def test_levels_and_parts_of_the_toy_spine(toy_spine):
    scene = SpineScene(toy_spine)
    # straight down through the spinous process of L3 (z = 0 +- 6): spinous tip at y = 62
    hits = scene.cast(
        np.array([[0.0, 100, 0], [30.0, 100, 0], [0.0, 100, 38]]), np.tile([0.0, -1, 0], (3, 1))
    )
    np.testing.assert_array_equal(hits.level, [3, 3, 2])
    np.testing.assert_array_equal(hits.part, [Part.SPINOUS, Part.TRANSVERSE, Part.SPINOUS])
    np.testing.assert_allclose(hits.t_mm, [38.0, 71.0, 38.0], atol=1e-4)


def test_intersections_list_entry_and_exit(make_box_spine):
    scene = SpineScene(make_box_spine((-20, -10, -5), (20, 10, 5)))
    ray_id, t, level, _ = scene.intersections(np.array([[-50.0, 0, 0]]), np.array([[1.0, 0, 0]]))
    np.testing.assert_array_equal(ray_id, [0, 0])
    np.testing.assert_allclose(t, [30.0, 70.0], atol=1e-4)
    np.testing.assert_array_equal(level, [1, 1])


def test_sample_surface_is_area_uniform_against_face_areas(make_box_spine):
    # a 40 x 20 x 10 box: faces normal to x hold 200 / 2800 of the area
    vert = make_box_spine((-20, -10, -5), (20, 10, 5)).vertebrae[1]
    assert surface_area_mm2(vert) == pytest.approx(2 * (800 + 400 + 200))
    pts, part = sample_surface(vert, 20000, seed=3)
    on_x = np.isclose(np.abs(pts[:, 0]), 20.0)
    assert on_x.mean() == pytest.approx(400 / 2800, abs=0.01)
    assert np.all(part == Part.BODY)
    np.testing.assert_array_equal(pts, sample_surface(vert, 20000, seed=3)[0])


def test_sample_surface_of_one_part(toy_spine):
    pts, part = sample_surface(toy_spine.vertebrae[3], 2000, seed=0, part=Part.SPINOUS)
    assert np.all(part == Part.SPINOUS)
    assert pts[:, 1].min() >= 37.0 - 1e-9 and np.abs(pts[:, 0]).max() <= 3.0 + 1e-9


def _vert(vertices, faces, part=None) -> VertebraMesh:
    v = np.asarray(vertices, float)
    return VertebraMesh(
        1,
        v,
        np.asarray(faces),
        np.zeros(len(v), np.uint8) if part is None else part,
        np.zeros(3),
        np.zeros(3),
    )


TRI = [[0, 0, 0], [1, 0, 0], [0, 1, 0]]


@pytest.mark.parametrize(
    ("spine", "match"),
    [
        (Spine("e", {}), "spine 'e' has no vertebrae"),
        (Spine("e", {1: _vert(np.zeros((0, 3)), [[0, 1, 2]])}), r"expected \(V, 3\) vertices"),
        (Spine("e", {1: _vert(TRI, np.zeros((0, 3), int))}), r"expected \(F, 3\) faces"),
        (Spine("e", {1: _vert(TRI, [[0, 1, 3]])}), r"face indices must lie in \[0, 2\]"),
        (Spine("e", {1: _vert([[0, 0, np.nan], *TRI[1:]], [[0, 1, 2]])}), "non-finite"),
        (Spine("e", {1: _vert(TRI, [[0, 1, 2]], np.zeros(2, np.uint8))}), r"expected \(3,\) part"),
        ("not a spine", "expected a Spine, got str"),
    ],
)
def test_bad_spines_are_rejected(spine, match):
    with pytest.raises(ValueError, match=match):
        SpineScene(spine)


def test_bad_rays_are_rejected(make_box_spine):
    scene = SpineScene(make_box_spine((0, 0, 0), (1, 1, 1)))
    with pytest.raises(
        ValueError, match=r"expected origins_mm as \(N, 3\) float points, got \(2, 4\)"
    ):
        scene.cast(np.zeros((2, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="one shape"):
        scene.cast(np.zeros((2, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="non-zero"):
        scene.cast(np.zeros((1, 3)), np.zeros((1, 3)))
