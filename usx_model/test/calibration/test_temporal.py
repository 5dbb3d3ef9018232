"""Temporal calibration against known offsets, on signals built by hand."""

import numpy as np
import pytest

from usx_model.calibration.temporal import calibrate_temporal, motion_signal


def _signals(offset_ms: float, hz: float = 1.0, amp: float = 10.0, noise: float = 0.02):
    rng = np.random.default_rng(0)
    tj = np.arange(0.0, 8.0, 0.01)
    pose = amp * np.sin(2 * np.pi * hz * tj)
    tf = np.arange(0.3, 7.7, 1 / 30)  # acquisition times
    depth = 35.0 - amp * np.sin(2 * np.pi * hz * tf) + rng.normal(0, noise, len(tf))
    stamps = ((tf - offset_ms * 1e-3) * 1e9).astype(np.int64) + 10**9  # stamped early
    return stamps, depth, (tj * 1e9).astype(np.int64) + 10**9, pose


@pytest.mark.parametrize("offset_ms", [-80.0, -12.5, 0.0, 33.3, 80.0])
def test_recovers_the_offset(offset_ms):
    res = calibrate_temporal(*_signals(offset_ms))
    assert res.converged
    assert res.offset_ms == pytest.approx(offset_ms, abs=0.5)
    assert res.correlation > 0.999


def test_no_motion_is_not_converged():
    stamps, depth, tj, pose = _signals(10.0, amp=1.0)
    res = calibrate_temporal(stamps, depth, tj, pose)
    assert not res.converged and any("moved" in w for w in res.warnings)


def test_unrelated_signals_are_not_converged():
    stamps, depth, tj, pose = _signals(10.0)
    res = calibrate_temporal(stamps, np.random.default_rng(1).permutation(depth), tj, pose)
    assert not res.converged and any("correlate" in w for w in res.warnings)


def test_motion_signal_is_the_principal_direction():
    t = np.linspace(0, 1, 50)
    pos = np.outer(np.sin(6 * t), [0.6, 0.0, 0.8]) + [100.0, 5.0, -3.0]
    s = motion_signal(pos)
    assert abs(np.corrcoef(s, np.sin(6 * t))[0, 1]) > 0.9999


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: (a[0][:5], a[1][:5], a[2], a[3]), "at least 10 frames"),
        (lambda a: (a[0], a[1][:-1], a[2], a[3]), "expected \\(F,\\) image stamps"),
        (lambda a: (a[0], a[1], a[2][::-1], a[3]), "pose stamps must increase"),
    ],
)
def test_bad_input(mutate, message):
    with pytest.raises(ValueError, match=message):
        calibrate_temporal(*mutate(_signals(0.0)))
