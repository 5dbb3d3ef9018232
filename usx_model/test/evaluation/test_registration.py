"""Evaluation helpers: exact perturbations, error measures, synthetic CBCT and sweep cases."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.parts import Part
from usx_model.base.transforms import apply_transform, make_transform, perturbation
from usx_model.evaluation.cases import make_sweep_case
from usx_model.evaluation.registration import synthetic_cbct, transform_errors
from usx_model.ingest.cbct import bone_surface
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.us_partial import UsPartialConfig


@pytest.mark.parametrize(("rot", "trans"), [(10.0, 10.0), (3.0, 0.0), (0.0, 7.0)])
def test_perturbation_is_exact(rot, trans):
    rng = np.random.default_rng(0)
    centre = np.array([100.0, -20.0, 400.0])
    P = perturbation(rng, centre, rot, trans)
    angle = np.degrees(Rotation.from_matrix(P[:3, :3]).magnitude())
    assert angle == pytest.approx(rot, abs=1e-9)
    # the centre moves by exactly the translation, whatever the rotation
    assert np.linalg.norm(apply_transform(P, centre[None])[0] - centre) == pytest.approx(trans)
    assert transform_errors(P, np.eye(4), centre) == pytest.approx((rot, trans), abs=1e-6)


def _sphere_spine(radius=12.0):
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius, 30)
    v = np.asarray(mesh.vertices)
    vert = VertebraMesh(
        1,
        v,
        np.asarray(mesh.triangles).astype(np.int64),
        np.full(len(v), int(Part.SPINOUS), np.uint8),
        np.zeros(3),
        np.zeros(3),
    )
    return Spine("sphere", {1: vert})


def test_synthetic_cbct_surface_matches_the_mesh():
    T = make_transform(np.eye(3), [5.0, -3.0, 2.0])
    vol = synthetic_cbct(_sphere_spine(), T, spacing_mm=1.0, seed=0)
    surf = bone_surface(vol, posterior_only=False)
    r = np.linalg.norm(surf.points_mm - [5.0, -3.0, 2.0], axis=1)
    assert np.median(r) == pytest.approx(12.0, abs=0.6)


def test_sweep_case_points_lie_on_the_bone():
    spine = _sphere_spine()
    cfg = UsPartialConfig(
        noise_axial_mm=0.0,
        noise_lateral_mm=0.0,
        lateral_shifts_mm=(0.0,),
        ap_shifts_mm=(0.0,),
        elevation_half_range_mm=10.0,
    )
    case = make_sweep_case(3, spine, cfg, outlier_fraction=0.1)
    inliers = case.level > 0
    back = apply_transform(np.linalg.inv(case.T_base_spine), case.points_base_mm)
    np.testing.assert_allclose(np.linalg.norm(back[inliers], axis=1), 12.0, atol=0.2)
    assert np.all(back[inliers][:, 1] > -1e-6)  # the probe looks from +y: posterior half
    assert np.sum(~inliers) == round(0.1 * inliers.sum())
