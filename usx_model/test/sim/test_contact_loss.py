"""Lost-contact schedule and air-gap rendering."""

import numpy as np
import pytest

from usx_model.sim.contact_loss import air_column_db, air_columns, contact_loss_schedule


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.1, 0.3])
def test_schedule_hits_the_fraction_in_separate_runs(fraction):
    share = contact_loss_schedule(1500, fraction, np.random.default_rng(0))
    assert (share != 0).sum() == round(fraction * 1500)
    lost = np.flatnonzero(share)
    if len(lost):
        # runs are separated by coupled frames and ramp in: first frame partial
        starts = lost[np.r_[True, np.diff(lost) > 1]]
        assert np.all(np.abs(share[starts]) < 1.0)
        assert np.abs(share).max() == 1.0 or len(lost) < 10


def test_air_columns_take_the_share_of_the_sector_from_one_edge():
    sector = np.zeros(100, dtype=bool)
    sector[10:90] = True
    right = air_columns(0.5, sector)
    assert right.sum() == 40 and right[50:90].all() and not right[90:].any()
    left = air_columns(-0.25, sector)
    assert left.sum() == 20 and left[10:30].all()
    assert not air_columns(0.0, sector).any()


def test_air_column_reverberations_fade_into_the_noise():
    db = air_column_db(400, 0.15)
    assert db[:40].max() > -10.0  # the first reverberation near the face is bright
    assert db[200:].max() <= -60.0  # 30 mm down only noise is left


def test_bad_fraction():
    with pytest.raises(ValueError, match="contact loss fraction"):
        contact_loss_schedule(100, 0.95, np.random.default_rng(0))
