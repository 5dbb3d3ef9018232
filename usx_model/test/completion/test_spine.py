"""SpineCompleter's optional US surface consistency: after the gate, points only near the US."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.base.points import nearest_distance
from usx_model.completion.spine import PatientPrior, SpineCompleter
from usx_model.network.config import compact_config
from usx_model.network.model import USXComplete
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import xray_points_25d

PRIOR = PatientPrior(np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))  # the spine frame


@pytest.fixture(scope="module")
def scene():
    spine = generate_spine(5)
    partials = simulate_us_partials(spine, seed=5)
    bone = np.vstack([partials[lv].points_mm for lv in spine.levels])
    torch.manual_seed(0)
    return bone, xray_points_25d(spine), USXComplete(compact_config("full"))


def test_us_snap_moves_points_near_the_us_onto_it_after_the_gate(scene) -> None:
    bone, xray, model = scene
    plain = SpineCompleter(model, None, n_samples=1).complete(bone, PRIOR, xray)
    snapped = SpineCompleter(model, None, n_samples=1, us_snap_mm=5.0).complete(bone, PRIOR, xray)
    assert "finish" in snapped.timings_s
    for a, b in zip(plain.levels, snapped.levels, strict=True):
        # the gate judged the same network output
        assert (a.status, a.confidence) == (b.status, b.confidence)
        np.testing.assert_equal(a.quality, b.quality)  # NaN where not measured
        moved = np.linalg.norm(a.points_mm - b.points_mm, axis=1) > 0
        d_before = nearest_distance(a.points_mm, bone)
        assert moved.any() and d_before[moved].max() <= 5.0 + 1e-9  # only near the US
        assert nearest_distance(b.points_mm[moved], bone).mean() < d_before[moved].mean()
        assert np.all(b.uncertainty_mm > 0)  # the error scale of the published points


def test_negative_snap_distance_is_refused(scene) -> None:
    with pytest.raises(ValueError, match=r"us_snap_mm: expected >= 0, got -1\.0"):
        SpineCompleter(scene[2], None, us_snap_mm=-1.0)


def test_points_prepared_beforehand_give_the_same_completion(scene) -> None:
    bone, xray, model = scene
    completer = SpineCompleter(model, None, n_samples=0, us_snap_mm=5.0)
    prepared = completer.prepare(bone, PRIOR)
    torch.manual_seed(1)
    a = completer.complete(bone, PRIOR, xray)
    torch.manual_seed(1)
    b = completer.complete(bone, PRIOR, xray, prepared=prepared)
    np.testing.assert_array_equal(a.point_level, b.point_level)
    for la, lb in zip(a.levels, b.levels, strict=True):
        np.testing.assert_array_equal(la.points_mm, lb.points_mm)
        assert (la.status, la.confidence) == (lb.status, lb.confidence)
    with pytest.raises(ValueError, match="prepared: made from other bone points"):
        completer.complete(bone.copy(), PRIOR, xray, prepared=prepared)
    other = PatientPrior(np.array([0.0, 0.0, 1.0]), np.array([0.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match="or another prior"):
        completer.complete(bone, other, xray, prepared=prepared)
