"""Tests of the US partial-view simulator and of the visibility fractions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from usx_model.base.parts import Part
from usx_model.sim.phantom.types import Spine
from usx_model.sim.us_partial import (
    UsPartialConfig,
    farthest_point_indices,
    simulate_us_partials,
)
from usx_model.sim.visibility import spine_visibility, visibility_fractions

NO_NOISE = UsPartialConfig(noise_axial_mm=0.0, noise_lateral_mm=0.0)


@pytest.mark.parametrize("fan_deg", [0.0, 40.0])
def test_sphere_partial_covers_only_the_hemisphere_facing_the_probe(make_sphere_spine, fan_deg):
    spine = make_sphere_spine(15.0)
    cfg = dataclasses.replace(NO_NOISE, fan_angle_deg=fan_deg)
    pts = simulate_us_partials(spine, cfg)[1].points_mm
    r = np.linalg.norm(pts, axis=1)
    assert len(pts) > 500
    np.testing.assert_allclose(r, 15.0, atol=0.2)  # on the (tessellated) sphere
    # a surface point is seen only if it faces some ray: rays tilt at most fan/2 from -y,
    # so nothing lies beyond 15 * sin(fan/2) anterior to the equator (0 for parallel rays)
    limit = -15.0 * np.sin(np.deg2rad(fan_deg / 2))
    assert pts[:, 1].min() > limit - 0.3
    # parallel rays reach the equator; tilted rays look a little beyond it
    assert pts[:, 1].min() < (1.0 if fan_deg == 0 else -0.3)
    # the near pole is covered
    assert np.min(np.linalg.norm(pts - [0, 15, 0], axis=1)) < 1.0


def test_far_box_is_shadowed_by_near_box(make_mesh_spine, make_box_spine):
    # two boxes, one behind the other along y; the probe only sees the posterior one
    import open3d as o3d

    near = o3d.geometry.TriangleMesh.create_box(200, 5, 200).translate((-100, 20, -100))
    far = o3d.geometry.TriangleMesh.create_box(10, 5, 10).translate((-5, 0, -5))
    spine = make_mesh_spine(near + far)
    pts = simulate_us_partials(spine, dataclasses.replace(NO_NOISE, crop_size_mm=(300, 300, 300)))
    pts = pts[1].points_mm
    assert len(pts) > 0
    np.testing.assert_allclose(pts[:, 1], 25.0, atol=1e-3)  # only the near box's top face


@pytest.mark.parametrize(("standoff_mm", "seen"), [(29.0, True), (31.0, False)])
def test_hits_deeper_than_the_imaging_depth_are_dropped(make_box_spine, standoff_mm, seen):
    # the probe face sits standoff_mm above the plate; parallel rays meet it at that depth
    spine = make_box_spine((-40, -5, -40), (40, 0, 40))
    cfg = dataclasses.replace(
        NO_NOISE, fan_angle_deg=0.0, standoff_mm=standoff_mm, max_depth_mm=30.0
    )
    assert (len(simulate_us_partials(spine, cfg)[1].points_mm) > 0) == seen


def test_crop_box_keeps_neighbours_and_reports_their_level(toy_spine):
    partials = simulate_us_partials(toy_spine, NO_NOISE)
    cfg = NO_NOISE
    for level, p in partials.items():
        c = toy_spine.vertebrae[level].centroid_mm
        assert np.all(np.abs(p.points_mm - c) <= np.asarray(cfg.crop_size_mm) / 2 + 1e-9)
    # the 64 mm tall crop of L3 reaches into L2 and L4 (levels 38 mm apart)
    assert set(np.unique(partials[3].hit_level)) == {2, 3, 4}


def test_union_over_shifts_sees_more_than_one_pose(toy_spine):
    one = dataclasses.replace(NO_NOISE, lateral_shifts_mm=(0.0,), ap_shifts_mm=(0.0,))
    n_one = len(simulate_us_partials(toy_spine, one)[3].points_mm)
    n_all = len(simulate_us_partials(toy_spine, NO_NOISE)[3].points_mm)
    assert n_all > 1.3 * n_one


def test_same_seed_same_cloud_other_seed_other_noise(toy_spine):
    a = simulate_us_partials(toy_spine, seed=7)[2].points_mm
    b = simulate_us_partials(toy_spine, seed=7)[2].points_mm
    c = simulate_us_partials(toy_spine, seed=8)[2].points_mm
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.allclose(a, c)


def test_noise_is_mostly_along_the_beam(make_box_spine):
    # flat plate facing the probe, linear probe: the beam is -y everywhere
    spine = make_box_spine((-40, -5, -40), (40, 0, 40))
    cfg = UsPartialConfig(fan_angle_deg=0.0, noise_axial_mm=0.5, noise_lateral_mm=0.05)
    pts = simulate_us_partials(spine, cfg, seed=1)[1].points_mm
    top = pts[np.abs(pts[:, 1]) < 3]
    assert np.std(top[:, 1]) == pytest.approx(np.hypot(0.5, 0.05), rel=0.1)


def test_occlusion_pattern_on_the_toy_spine(toy_spine):
    vis = spine_visibility(toy_spine, simulate_us_partials(toy_spine), n_samples=3000)
    body = np.mean([v.body for v in vis.values()])
    posterior = np.mean([v.posterior for v in vis.values()])
    # the toy's bare cylinder bodies are more exposed than real ones; the ordering holds
    assert body < 0.25 and posterior > 0.35 and posterior > 2 * body


def _naive_fractions(gt, part, partial, radius):
    seen = cdist(gt, partial).min(axis=1) <= radius
    body = part == Part.BODY
    post = np.isin(part, [Part.SPINOUS, Part.LAMINA, Part.TRANSVERSE])
    return seen[body].mean(), seen[post].mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_visibility_fractions_match_a_brute_force_reference(seed):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-10, 10, (400, 3))
    part = rng.integers(1, 8, 400).astype(np.uint8)
    partial = rng.uniform(-10, 10, (300, 3))
    got = visibility_fractions(gt, part, partial, radius_mm=2.0)
    ref = _naive_fractions(gt, part, partial, 2.0)
    assert (got.body, got.posterior) == pytest.approx(ref)


def test_visibility_of_an_empty_partial_is_zero():
    got = visibility_fractions(np.zeros((3, 3)), np.array([1, 3, 4]), np.zeros((0, 3)))
    assert got.body == 0.0 and got.posterior == 0.0


def test_fps_matches_a_naive_greedy_reference():
    pts = np.random.default_rng(0).normal(size=(200, 3))
    idx = farthest_point_indices(pts, 20, seed=4)
    ref = [idx[0]]
    for _ in range(19):
        ref.append(int(np.argmax(cdist(pts, pts[ref]).min(axis=1))))
    np.testing.assert_array_equal(idx, ref)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: simulate_us_partials(Spine("x", {})), "has no vertebrae"),
        (lambda: simulate_us_partials(None), "expected a Spine, got NoneType"),
        (
            lambda: visibility_fractions(np.zeros((3, 2)), np.zeros(3), np.zeros((1, 3))),
            r"expected gt_points_mm as \(N, 3\) float points, got \(3, 2\)",
        ),
        (
            lambda: visibility_fractions(np.zeros((3, 3)), np.zeros(2), np.zeros((1, 3))),
            r"expected \(3,\) gt_part, got \(2,\)",
        ),
    ],
)
def test_bad_inputs_are_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"fan_angle_deg": 180.0}, r"fan_angle_deg must lie in \[0, 180\)"),
        ({"max_incidence_deg": 95.0}, r"max_incidence_deg must lie in \(0, 90\]"),
        ({"rays_per_plane": 1}, "rays_per_plane must be >= 2"),
        ({"crop_size_mm": (1.0, 2.0)}, "crop_size_mm must be 3 positive sizes"),
        ({"elevation_step_mm": 0.0}, "elevation_step_mm must be a finite number > 0"),
        ({"lateral_shifts_mm": ()}, "need at least one value"),
        ({"noise_axial_mm": -1.0}, "noise sds must be >= 0"),
    ],
)
def test_bad_config_is_rejected(toy_spine, change, match):
    with pytest.raises(ValueError, match=match):
        simulate_us_partials(toy_spine, dataclasses.replace(UsPartialConfig(), **change))
