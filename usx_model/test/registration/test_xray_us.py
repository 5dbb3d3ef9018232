"""X-ray re-registration to US bone points after a patient's motion."""

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import make_transform
from usx_model.base.xray_geometry import transform_geometry
from usx_model.registration.xray_us import (
    MovedProjection,
    anterior_gradients,
    register_xray_to_us,
)
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import body_midplane_point_mm, lateral_geometry, render_lateral_xray

POSTERIOR = np.array([0.0, 1.0, 0.0])  # the phantom's spine frame is LPS


@pytest.fixture(scope="module")
def scene():
    spine = generate_spine(7)
    geometry = lateral_geometry(spine)
    shot = render_lateral_xray(spine, geometry)
    partials = simulate_us_partials(spine, seed=7)
    us = np.vstack([partials[lv].points_mm for lv in spine.levels])
    bodies = np.array([spine.vertebrae[lv].body_centroid_mm for lv in spine.levels])
    return spine, geometry, shot.image, us, bodies


def _body_error_mm(geometry, truth, bodies):
    """Mean distance on the detector between where the bodies project and where they are."""
    return float(
        np.linalg.norm(geometry.project(bodies) - truth.project(bodies), axis=1).mean()
        * truth.pixel_mm
    )


@pytest.mark.parametrize(
    ("shift_mm", "deg"), [((0.0, 3.0, 4.0), 3.0), ((0.0, -8.0, 6.0), 0.0), ((0.0, 0.0, 0.0), 5.0)]
)
def test_undoes_the_patient_motion(scene, shift_mm, deg):
    """Motion in the X-ray's plane (posterior/superior, about the lateral beam axis)."""
    spine, truth, image, us, bodies = scene
    c = body_midplane_point_mm(spine)
    R = Rotation.from_euler("x", deg, degrees=True).as_matrix()
    moved = make_transform(R, c - R @ c + np.asarray(shift_mm))
    believed = transform_geometry(truth, moved)
    reg = register_xray_to_us(image, believed, us, POSTERIOR)
    assert reg.applied and reg.score_after > reg.score_before
    corrected = transform_geometry(believed, reg.T_correction)
    before = _body_error_mm(believed, truth, bodies)
    after = _body_error_mm(corrected, truth, bodies)
    assert before > 4.0 and after < 1.5, (before, after)


def test_motion_along_the_beam_leaves_the_projection(scene):
    _, truth, image, us, _ = scene
    moved = np.eye(4)
    moved[0, 3] = 10.0  # 10 mm along the lateral beam: what the symmetry plane handles
    reg = register_xray_to_us(image, transform_geometry(truth, moved), us, POSTERIOR)
    assert np.hypot(*reg.shift_mm) < 1.5


def test_an_xray_that_did_not_move_is_left_alone(scene):
    _, truth, image, us, _ = scene
    reg = register_xray_to_us(image, truth, us, POSTERIOR)
    assert not reg.applied
    np.testing.assert_array_equal(reg.T_correction, np.eye(4))


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("shape", "expected an image of shape"),
        ("points", "at least 50 bone points"),
        ("beam", "along the X-ray beam"),
    ],
)
def test_bad_input(scene, kind, message):
    _, truth, image, us, _ = scene
    args = [image, truth, us, POSTERIOR]
    if kind == "shape":
        args[0] = image[:-1]
    elif kind == "points":
        args[2] = us[:10]
    else:
        args[3] = truth.normal
    with pytest.raises(ValueError, match=message):
        register_xray_to_us(*args)


def test_gradients_made_once_give_the_same_registration(scene):
    spine, truth, image, us, _ = scene
    c = body_midplane_point_mm(spine)
    believed = transform_geometry(truth, make_transform(np.eye(3), np.array([0.0, 4.0, -5.0])))
    made = anterior_gradients(image, believed, POSTERIOR)
    once = register_xray_to_us(image, believed, us, POSTERIOR, gradients=made)
    each = register_xray_to_us(image, believed, us, POSTERIOR)
    np.testing.assert_array_equal(once.T_correction, each.T_correction)
    assert once.applied
    turned = make_transform(Rotation.from_euler("z", 30, degrees=True).as_matrix(), c)
    with pytest.raises(ValueError, match="gradients: made for another X-ray geometry"):
        register_xray_to_us(image, transform_geometry(truth, turned), us, POSTERIOR, gradients=made)


@pytest.mark.parametrize("parallel", [False, True])
def test_the_moved_projection_equals_projecting_through_the_moved_geometry(scene, parallel):
    """The registration's fast projection against the geometry's own, moved as a whole."""
    _, truth, _, us, _ = scene
    geometry = dataclasses.replace(truth, parallel=parallel)
    centre = us.mean(axis=0)
    project = MovedProjection(geometry, us, centre)
    n, u, v = geometry.normal, np.asarray(geometry.u_axis), np.asarray(geometry.v_axis)
    for x in ([0.0, 0.0, 0.0], [3.0, -7.5, 0.0], [0.0, 0.0, -6.0], [-12.0, 4.0, 7.5]):
        R = Rotation.from_rotvec(np.radians(x[2]) * n).as_matrix()
        T = make_transform(R, centre - R @ centre + x[0] * u + x[1] * v)
        expected = transform_geometry(geometry, T).project(us).T
        np.testing.assert_allclose(project(np.array(x)), expected, atol=1e-9)
