"""The offline pipeline on one phantom spine: every stage runs and meets its bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.evaluation.offline import run_offline
from usx_model.network.config import tiny_config
from usx_model.network.model import USXComplete
from usx_model.sim.phantom.spine import generate_spine

pytestmark = pytest.mark.slow


def test_stages_meet_their_bounds_and_the_contract_holds():
    torch.manual_seed(0)
    models = [USXComplete(tiny_config(v)) for v in ("full", "us_only")]
    res = run_offline(generate_spine(31337), *models, seed=1, sweep_speed_mm_s=40.0)
    r = res.report
    # The JSON contract of `usx pipeline --json`.
    for key in ("median_mm", "within_1mm", "recall_1mm"):
        assert np.isfinite(r["bone_points"][key])
    assert r["bone_points"]["median_mm"] <= 0.5 and r["bone_points"]["within_1mm"] >= 0.9
    assert r["bone_points"]["recall_1mm"] >= 0.7
    assert r["registration"]["cbct_us"]["trans_mm"] <= 1.0
    assert r["registration"]["cbct_us"]["rot_deg"] <= 1.0
    assert r["xray"]["lateral_error_mm"] <= 2.0
    assert r["level_split"]["accuracy"] >= 0.9
    assert np.isfinite(r["completion"]["cd_l1_mm"]) and np.isfinite(
        r["completion_ideal"]["cd_l1_mm"]
    )
    assert set(res.completed_base_mm) == {1, 2, 3, 4, 5}
