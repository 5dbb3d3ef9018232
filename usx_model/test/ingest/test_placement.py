"""Placement pipelines: labels land on each vertebra's symmetry plane, with and without CBCT."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import apply_transform, invert_transform, make_transform
from usx_model.ingest.placement import place_with_cbct, place_without_cbct
from usx_model.ingest.xray import device_geometry

PITCH = 40.0
SHIFTS = {1: 2.5, 2: -1.5}  # lateral offsets of the two "vertebrae" (scoliosis)


def _bone(rng, n=1200):
    """Two mirror-symmetric bone surfaces seen from +y, stacked along z, shifted in x
    (narrower than the stack is long, so OBB axis 1 is cranio-caudal as for a spine)."""
    out = []
    for lv, s in SHIFTS.items():
        x, z = rng.uniform(2, 28, n), rng.uniform(-15, 15, n)
        y = 0.03 * x**2 + 6.0 * np.exp(-(((x - 15) / 4) ** 2)) + 3.0 * np.sin(z / 6.0)
        half = np.column_stack([x, y, z])
        both = np.vstack([half, half * [-1, 1, 1]])
        out.append(both + [s, 0.0, -PITCH * (lv - 1)])
    return np.vstack(out)


def _label(geom, T_spine_xray):
    """Body silhouettes 16 x 24 px of L1 and L2 at the bodies' projected centres."""
    label = np.zeros(geom.shape, np.uint8)
    for lv in SHIFTS:
        centre = np.array([[SHIFTS[lv], -20.0, -PITCH * (lv - 1)]])
        r, c = np.rint(geom.project(apply_transform(invert_transform(T_spine_xray), centre))[0])
        label[int(r) - 8 : int(r) + 8, int(c) - 12 : int(c) + 12] = lv
    return label


@pytest.mark.parametrize("with_cbct", [False, True])
def test_labels_land_on_each_symmetry_plane(with_cbct):
    rng = np.random.default_rng(0)
    bone = _bone(rng)
    geom = device_geometry((300, 300), 0.4, 1100.0, 750.0)
    T_spine_xray = make_transform(np.eye(3), [0.0, -10.0, -20.0])
    label = _label(geom, T_spine_xray)
    T_base_spine = make_transform(Rotation.random(random_state=1).as_matrix(), [400.0, 0, 100])
    if with_cbct:
        T_cbct_spine = make_transform(np.eye(3), [5.0, 7.0, -9.0])
        T_base_cbct = T_base_spine @ invert_transform(T_cbct_spine)
        pts, _ = place_with_cbct(
            label,
            geom,
            T_base_cbct,
            T_cbct_spine @ T_spine_xray,
            apply_transform(T_cbct_spine, bone),
        )
    else:
        us = apply_transform(T_base_spine, bone) + rng.normal(0, 0.2, bone.shape)
        pts, _ = place_without_cbct(label, geom, T_base_spine @ T_spine_xray, us)
    assert sorted(pts) == [1, 2]
    for lv, s in SHIFTS.items():
        local = apply_transform(invert_transform(T_base_spine), pts[lv])
        # every body point sits on x = the vertebra's own mid-plane, despite the shifts
        np.testing.assert_allclose(local[:, 0], s, atol=0.3)
        assert len(local) == 16 * 24


def test_empty_label_is_an_error():
    geom = device_geometry((20, 20), 0.4, 1100.0, 750.0)
    bone = _bone(np.random.default_rng(0), n=100)
    with pytest.raises(ValueError, match="no labelled pixels"):
        place_without_cbct(np.zeros((20, 20), np.uint8), geom, np.eye(4), bone)
