"""Lab conditions: validation and the disturbances they describe."""

import numpy as np
import pytest

from usx_model.sim.conditions import (
    ChainConditions,
    breathing_displacement_mm,
    calibration_error,
    condition_rng,
)


def test_breathing_is_zero_mean_with_the_given_excursion():
    t = np.linspace(0, 40, 40001)
    d = breathing_displacement_mm(t, 3.0, 0.25, 0.4)
    assert np.ptp(d) == pytest.approx(3.0, abs=1e-3)
    assert abs(d.mean()) < 1e-3


def test_calibration_error_has_exactly_the_given_size():
    E = calibration_error(np.random.default_rng(0), 2.0, 3.0)
    angle = np.degrees(np.arccos((np.trace(E[:3, :3]) - 1) / 2))
    assert angle == pytest.approx(3.0, abs=1e-9)
    # rotation about the probe origin: the translation is the error alone
    assert np.linalg.norm(E[:3, 3]) == pytest.approx(2.0, abs=1e-9)


def test_each_disturbance_draws_its_own_stream():
    a = condition_rng(5, "xray_shift").normal(size=3)
    b = condition_rng(5, "calib_error").normal(size=3)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, condition_rng(5, "xray_shift").normal(size=3))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"breathing_mm": -1.0}, "breathing_mm must be >= 0"),
        ({"breathing_hz": 0.0}, "breathing_hz must lie in"),
        ({"contact_loss_frac": 1.0}, "contact_loss_frac must lie in"),
        ({"time_offset_ms": float("inf")}, "time_offset_ms must be finite"),
        ({"xray_shift_deg": -2.0}, "xray_shift_deg must be >= 0"),
    ],
)
def test_bad_conditions(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChainConditions(**kwargs)
