"""Probe contact: coupled columns kept, air columns found, outside-sector columns ignored."""

import numpy as np
import pytest

from usx_model.segmentation.contact import ContactParams, probe_contact
from usx_model.sim.contact_loss import air_columns, apply_air_gap


def _tissue(rows=400, cols=200, sector=(20, 180), seed=0):
    rng = np.random.default_rng(seed)
    img = np.clip(rng.rayleigh(45.0, (rows, cols)), 0, 255).astype(np.uint8)
    img[:, : sector[0]] = 0
    img[:, sector[1] :] = 0
    return img


def test_coupled_frame_is_in_contact():
    c = probe_contact(_tissue())
    assert c.ok and c.fraction == 1.0
    assert c.sector.sum() == 160 and not c.sector[:20].any()


@pytest.mark.parametrize("share", [1.0, -1.0, 0.7, -0.55])
def test_air_gap_is_found_column_by_column(share):
    img = _tissue()
    air = air_columns(share, img.max(axis=0) > 0)
    c = probe_contact(apply_air_gap(img, air, 0.15, np.random.default_rng(1)))
    np.testing.assert_array_equal(c.columns, (img.max(axis=0) > 0) & ~air)
    assert c.fraction == pytest.approx(1 - abs(share), abs=0.01)
    assert not c.ok


def test_small_air_gap_keeps_the_frame():
    img = _tissue()
    air = air_columns(0.3, img.max(axis=0) > 0)
    c = probe_contact(apply_air_gap(img, air, 0.15, np.random.default_rng(1)))
    assert c.ok and c.fraction == pytest.approx(0.7, abs=0.01)


def test_shadowed_bone_below_the_band_is_tissue():
    img = _tissue()
    img[70:72] = 250  # bone echo at 10.5 mm ...
    img[72:] = 0  # ... and its shadow
    assert probe_contact(img).ok


def test_blank_frame_has_no_contact():
    c = probe_contact(np.zeros((400, 200), np.uint8))
    assert c.fraction == 0.0 and not c.ok


@pytest.mark.parametrize(
    ("image", "params", "message"),
    [
        (np.zeros((400, 200), np.float32), None, "uint8"),
        (np.zeros((400,), np.uint8), None, "uint8"),
        (np.zeros((40, 200), np.uint8), None, "the image has 40 rows"),
        (np.zeros((400, 200), np.uint8), ContactParams(band_mm=(5.0, 2.0)), "0 <= top < bottom"),
        (np.zeros((400, 200), np.uint8), ContactParams(depth_mm_per_px=0.0), "depth_mm_per_px"),
        (
            np.zeros((400, 200), np.uint8),
            ContactParams(min_contact_fraction=1.5),
            "min_contact_fraction",
        ),
    ],
)
def test_bad_input(image, params, message):
    with pytest.raises(ValueError, match=message):
        probe_contact(image, params)
