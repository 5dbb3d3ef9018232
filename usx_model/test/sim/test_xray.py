"""Tests of the lateral X-ray simulators: 2.5D body points, DRR, labels and their inverse."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from usx_model.base.parts import Part
from usx_model.base.xray_geometry import XrayGeometry, label_pixels_to_points
from usx_model.sim.xray import (
    body_points_25d,
    lateral_geometry,
    render_lateral_xray,
    xray_points_25d,
)


def test_25d_points_fill_the_body_silhouette_on_the_mid_plane(toy_spine):
    pts = xray_points_25d(toy_spine, grid_mm=1.0)
    for level, p in pts.items():
        z0 = toy_spine.vertebrae[level].body_centroid_mm[2]
        # the toy body is an elliptic cylinder: radii 22 (x) x 16 (y), 26 mm tall
        np.testing.assert_array_equal(p[:, 0], toy_spine.vertebrae[level].body_centroid_mm[0])
        assert np.all(np.abs(p[:, 1]) <= 16.0 + 1.0) and np.all(np.abs(p[:, 2] - z0) <= 13.0 + 1.0)
        # every node of a 1 mm lattice inside the 32 x 26 mm rectangle is covered
        yy, zz = np.meshgrid(np.arange(-15.5, 16), np.arange(-12.5, 13) + z0)
        lattice = np.stack([yy.ravel(), zz.ravel()], axis=1)
        d = np.min(np.abs(lattice[:, None, :] - p[None, :, 1:]).max(axis=2), axis=1)
        assert d.max() <= 0.5 + 1e-9


def test_25d_points_of_a_sphere_form_a_disc(make_sphere_spine):
    p = body_points_25d(make_sphere_spine(12.0, (5.0, 0.0, 0.0)).vertebrae[1], grid_mm=0.5)
    np.testing.assert_allclose(p[:, 0], 5.0, atol=0.05)  # body centroid x of the sphere
    r = np.hypot(p[:, 1], p[:, 2])
    assert r.max() <= 12.0 + 0.5
    assert len(p) * 0.5**2 == pytest.approx(np.pi * 12.0**2, rel=0.05)


def test_25d_jitter_is_seeded(toy_spine):
    a = xray_points_25d(toy_spine, jitter_seed=3)[2]
    b = xray_points_25d(toy_spine, jitter_seed=3)[2]
    c = xray_points_25d(toy_spine, jitter_seed=4)[2]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_geometry_projects_pixel_centres_back_to_their_pixels(toy_spine):
    g = lateral_geometry(toy_spine, pixel_mm=1.0)
    rows = np.array([0.0, 10.0, g.shape[0] - 1.0])
    cols = np.array([0.0, 20.0, g.shape[1] - 1.0])
    np.testing.assert_allclose(g.project(g.pixel_centres(rows, cols)), np.c_[rows, cols], atol=1e-9)
    assert g.sid_mm == pytest.approx(1100.0)
    iso_x = np.mean([v.body_centroid_mm[0] for v in toy_spine.vertebrae.values()])
    assert g.magnification(iso_x) == pytest.approx(1100.0 / 750.0)  # SID / SOD
    np.testing.assert_allclose(g.project(g.origin_mm[None]), [[0.0, 0.0]], atol=1e-9)
    rc = g.project(np.vstack([v.vertices_mm for v in toy_spine.vertebrae.values()]))
    assert rc.min() >= 0 and np.all(rc.max(axis=0) <= np.array(g.shape) - 1)


def _sphere_thickness_reference(g: XrayGeometry, centre, radius):
    """Analytic chord length of each pixel's ray through a sphere."""
    rows, cols = np.indices(g.shape).reshape(2, -1)
    o, d = g.rays(rows, cols)
    oc = np.asarray(centre) - o
    along = np.sum(oc * d, axis=1)
    dist2 = np.sum(oc * oc, axis=1) - along**2
    return (2 * np.sqrt(np.clip(radius**2 - dist2, 0, None))).reshape(g.shape)


@pytest.mark.parametrize("parallel", [False, True])
def test_drr_thickness_matches_analytic_sphere_chords(make_sphere_spine, parallel):
    spine = make_sphere_spine(15.0, (0.0, 0.0, 0.0))
    g = lateral_geometry(spine, pixel_mm=0.8, parallel=parallel)
    xr = render_lateral_xray(spine, g, mu_bone_per_mm=0.04)
    ref = _sphere_thickness_reference(g, (0, 0, 0), 15.0)
    err = np.abs(xr.thickness_mm - ref)
    assert np.median(err[ref > 0]) < 0.1 and np.percentile(err, 99) < 2.0
    assert xr.thickness_mm.max() == pytest.approx(30.0, abs=0.2)
    expect = np.rint(65535 * (1 - np.exp(-0.04 * xr.thickness_mm.astype(np.float64))))
    np.testing.assert_allclose(xr.image, expect, atol=1)


def test_drr_sums_path_lengths_through_separate_bones(make_mesh_spine):
    import open3d as o3d

    a = o3d.geometry.TriangleMesh.create_box(10, 20, 20).translate((-30, -10, -10))
    b = o3d.geometry.TriangleMesh.create_box(6, 20, 20).translate((10, -10, -10))
    spine = make_mesh_spine(a + b)
    g = dataclasses.replace(lateral_geometry(spine, pixel_mm=1.0), parallel=True)
    xr = render_lateral_xray(spine, g)
    r, c = np.rint(g.project(np.array([[0.0, 0.0, 0.0]]))[0]).astype(int)
    assert xr.thickness_mm[r, c] == pytest.approx(16.0, abs=1e-3)


def test_label_image_marks_each_body_and_inverts_to_within_a_pixel(toy_spine):
    g = lateral_geometry(toy_spine, pixel_mm=1.0)
    xr = render_lateral_xray(toy_spine, g)
    assert set(np.unique(xr.label)) == {0, 1, 2, 3, 4, 5}
    for level in toy_spine.levels:
        c = toy_spine.vertebrae[level].body_centroid_mm
        r0, c0 = np.rint(g.project(c[None])[0]).astype(int)
        assert xr.label[r0, c0] == level
        pts = label_pixels_to_points(xr.label, g, level, x_mm=float(c[0]))
        np.testing.assert_allclose(pts[:, 0], c[0], atol=1e-9)
        rows, cols = np.nonzero(xr.label == level)
        np.testing.assert_allclose(g.project(pts), np.c_[rows, cols], atol=1e-6)
        # the silhouette lies inside the cone projection of the body's bounding box
        corners = c + np.array(np.meshgrid([-22, 22], [-16, 16], [-13, 13])).reshape(3, -1).T
        box = g.project(corners)
        assert rows.min() >= box[:, 0].min() - 1 and rows.max() <= box[:, 0].max() + 1
        assert cols.min() >= box[:, 1].min() - 1 and cols.max() <= box[:, 1].max() + 1
        assert len(rows) > 0.9 * np.ptp(box[:, 0]) * np.ptp(box[:, 1]) * 0.8
    # with a parallel beam the mid-plane points reproduce the body's y-z extent
    gp = dataclasses.replace(g, parallel=True)
    pts = label_pixels_to_points(render_lateral_xray(toy_spine, gp).label, gp, 3, 0.0)
    assert np.abs(pts[:, 1]).max() == pytest.approx(16.0, abs=1.0)
    assert np.abs(pts[:, 2]).max() == pytest.approx(13.0, abs=1.0)
    # the spinous processes are bone in the DRR but not body in the labels
    tip = np.rint(g.project(np.array([[0.0, 55.0, 0.0]]))[0]).astype(int)
    assert xr.thickness_mm[tip[0], tip[1]] > 0 and xr.label[tip[0], tip[1]] == 0


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda s, g: label_pixels_to_points(np.zeros((3, 3)), g, 1, 0.0),
            r"expected a label image of shape \(\d+, \d+\), got \(3, 3\)",
        ),
        (
            lambda s, g: label_pixels_to_points(np.zeros(g.shape), g, 1, np.nan),
            "x_mm must be finite, got nan",
        ),
        (
            lambda s, g: lateral_geometry(s, sid_mm=500.0, sod_mm=600.0),
            "expected sod_mm < sid_mm, got sod_mm=600.0, sid_mm=500.0",
        ),
        (lambda s, g: lateral_geometry(s, pixel_mm=0.0), "pixel_mm must be a finite number > 0"),
        (
            lambda s, g: render_lateral_xray(s, g, mu_bone_per_mm=-1.0),
            "mu_bone_per_mm must be a finite number > 0",
        ),
        (
            lambda s, g: body_points_25d(s.vertebrae[1], grid_mm=0.0),
            "grid_mm must be a finite number > 0",
        ),
        (lambda s, g: g.project(np.zeros((2, 2))), r"expected points_mm as \(N, 3\)"),
    ],
)
def test_bad_inputs_are_rejected(toy_spine, call, match):
    g = lateral_geometry(toy_spine, pixel_mm=2.0)
    with pytest.raises(ValueError, match=match):
        call(toy_spine, g)


def test_unlabelled_mesh_has_no_body_to_project(make_mesh_spine):
    import open3d as o3d

    spine = make_mesh_spine(o3d.geometry.TriangleMesh.create_sphere(5.0), part=int(Part.SPINOUS))
    with pytest.raises(ValueError, match=r"L1: no body-labelled \(part 1\) triangles"):
        xray_points_25d(spine)
    g = lateral_geometry(spine, pixel_mm=1.0)
    with pytest.raises(ValueError, match=r"L1: no body-labelled \(part 1\) triangles"):
        render_lateral_xray(spine, g)
    xr = render_lateral_xray(spine, g, labels=False)  # the DRR itself needs no labels
    assert xr.thickness_mm.max() == pytest.approx(10.0, abs=0.1) and not xr.label.any()
