"""X-ray silhouette snapping, against analytic geometry: a rectangular body silhouette."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from usx_model.network.inference import complete
from usx_model.network.model import USXComplete
from usx_model.network.xray_consistency import silhouette_plane, snap_to_silhouette

POSTERIOR = np.array([0.0, 1.0, 0.0])


def rectangle(spacing_mm: float = 1.0) -> np.ndarray:
    """Filled silhouette y in [-10, 10] (posterior +y), z in [-15, 15], on the plane x = 2."""
    y, z = np.meshgrid(np.arange(-10, 10 + 1e-9, spacing_mm), np.arange(-15, 15 + 1e-9, spacing_mm))
    return np.stack([np.full(y.size, 2.0), y.ravel(), z.ravel()], axis=1)


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ((9.0, -12.0, 0.0), (9.0, -10.0, 0.0)),  # anterior, 2 mm out: onto the wall
        ((-7.0, 0.0, 17.5), (-7.0, 0.0, 15.0)),  # superior, 2.5 mm out: onto the endplate rim
        ((4.0, -3.0, -16.0), (4.0, -3.0, -15.0)),  # inferior, 1 mm out
        ((9.0, -14.0, 0.0), (9.0, -14.0, 0.0)),  # 4 mm out: another structure, stays
        ((9.0, 12.0, 0.0), (9.0, 12.0, 0.0)),  # behind the posterior edge: pedicle, stays
        ((9.0, 6.0, 17.0), (9.0, 6.0, 17.0)),  # above, inside the posterior band: stays
        ((20.0, 0.0, 0.0), (20.0, 0.0, 0.0)),  # inside the silhouette: beam unseen, stays
    ],
    ids=["anterior", "superior", "inferior", "too_far", "posterior", "posterior_band", "inside"],
)
def test_snap_against_the_rectangle(point, expected) -> None:
    got = snap_to_silhouette(np.array([point]), silhouette_plane(rectangle()), POSTERIOR)
    np.testing.assert_allclose(got[0], expected, atol=1e-9)


def test_snap_is_rotation_and_translation_equivariant() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform([-20, -14, -19], [20, 14, 19], size=(400, 3))
    rot = Rotation.from_rotvec([0.3, -0.7, 0.4]).as_matrix()
    shift = np.array([50.0, -30.0, 12.0])
    ref = snap_to_silhouette(pts, silhouette_plane(rectangle()), POSTERIOR)
    plane = silhouette_plane(rectangle() @ rot.T + shift)
    moved = snap_to_silhouette(pts @ rot.T + shift, plane, rot @ POSTERIOR)
    np.testing.assert_allclose(moved, ref @ rot.T + shift, atol=1e-6)
    assert (np.linalg.norm(ref - pts, axis=1) > 0).sum() > 10  # the case moves points


def test_sparse_silhouette_is_closed_before_snapping() -> None:
    # 2 mm spacing (a 512-point FPS of a real silhouette is this sparse): no false holes.
    sparse = silhouette_plane(rectangle(2.0))
    got = snap_to_silhouette(np.array([[0.0, -0.9, 0.9]]), sparse, POSTERIOR)
    np.testing.assert_allclose(got[0], [0.0, -0.9, 0.9])


def test_plane_axes_and_spread() -> None:
    plane = silhouette_plane(rectangle())
    axes = plane.axes(np.array([0.3, 1.0, 0.0]))
    np.testing.assert_allclose(plane.origin_mm, [2.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(np.abs(plane.normal), [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(axes[0], plane.normal)
    np.testing.assert_allclose(axes[1], [0.0, 1.0, 0.0], atol=1e-9)  # in-plane part only
    np.testing.assert_allclose(axes @ axes.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(axes) == pytest.approx(1.0)
    assert plane.spread_mm == pytest.approx(0.0, abs=1e-9) and plane.is_planar
    two_planes = silhouette_plane(np.vstack([rectangle(), rectangle() + [1.0, 0.0, 0.0]]))
    assert two_planes.spread_mm == pytest.approx(0.5, abs=1e-3)  # sample std, x = 2 and x = 3
    assert not two_planes.is_planar


@pytest.mark.parametrize(
    ("points", "xray", "posterior", "match"),
    [
        (
            np.zeros((1, 3)),
            np.vstack([rectangle(), rectangle() + [2.0, 0.0, 0.0]]),
            POSTERIOR,
            "spread of 1.00 mm along its normal",
        ),
        (np.zeros((1, 3)), rectangle(), np.array([1.0, 0.0, 0.0]), "lies along the X-ray beam"),
        (np.full((1, 3), np.nan), rectangle(), POSTERIOR, "points_mm contains non-finite values"),
        (np.zeros((1, 2)), rectangle(), POSTERIOR, r"points_mm as \(N, 3\) float points, got \(1"),
        (np.zeros((1, 3)), rectangle()[:2], POSTERIOR, "xray_points_mm needs at least 4 points"),
    ],
    ids=["thick", "posterior_along_beam", "nan", "shape", "too_few"],
)
def test_bad_input(points, xray, posterior, match) -> None:
    with pytest.raises(ValueError, match=match):
        snap_to_silhouette(points, silhouette_plane(xray), posterior)


def test_complete_snaps_only_a_model_with_xray(tiny) -> None:
    torch.manual_seed(0)
    model = USXComplete(tiny(n_out=1024, up_ratio=8))
    rng = np.random.default_rng(0)
    us = [rng.normal(size=(200, 3)) * [6, 2, 5] + [0, 15, 0]]
    xr = [rectangle()]
    off = complete(us, xr, ["L1"], model, n_samples=0, xray_snap=False).points_mm[0]
    on = complete(us, xr, ["L1"], model, n_samples=0).points_mm[0]
    np.testing.assert_allclose(
        on, snap_to_silhouette(off, silhouette_plane(xr[0]), POSTERIOR), atol=1e-4
    )
    assert (np.linalg.norm(on - off, axis=1) > 0.1).sum() > 5  # the case moves points
    # A thick X-ray cloud is not a silhouette on a plane: nothing to snap to.
    thick = [rectangle() + rng.normal(size=rectangle().shape) * [2.0, 0, 0]]
    np.testing.assert_array_equal(
        complete(us, thick, ["L1"], model, n_samples=0).points_mm,
        complete(us, thick, ["L1"], model, n_samples=0, xray_snap=False).points_mm,
    )
