"""The offline pipeline on one phantom spine: every stage runs and meets its bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from usx_model.evaluation.offline import run_offline
from usx_model.network.config import tiny_config
from usx_model.network.model import USXComplete
from usx_model.sim.conditions import ChainConditions
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
    # the simulator's partials hold a few hits on the bodies; the diagnostic leaves them out
    assert 0.0 < r["completion_ideal"]["body_hit_share"] < 0.1
    assert np.isfinite(r["completion_ideal_no_body"]["cd_l1_mm"])
    assert r["completion_ideal_no_body"]["cd_l1_mm"] != r["completion_ideal"]["cd_l1_mm"]


def test_lab_conditions_are_simulated_detected_and_reported():
    torch.manual_seed(0)
    models = [USXComplete(tiny_config(v)) for v in ("full", "us_only")]
    # 0.2 Hz: the serpentine's passes must see each place at different phases of the breath
    # (compounding.breathing); at 40 mm/s some rates come back in phase with the passes
    # and the fit fails (docs/results.md: 0.25 Hz with a 10 mm overshoot, 0.3 Hz with 25)
    cond = ChainConditions(
        breathing_mm=3.0, breathing_hz=0.2, contact_loss_frac=0.1, xray_shift_mm=2.0
    )
    r = run_offline(
        generate_spine(31337), *models, seed=1, sweep_speed_mm_s=40.0, conditions=cond
    ).report
    bp, c = r["bone_points"], r["conditions"]
    # every frame with air under the probe is dropped or has its air columns masked
    assert c["frames_with_air"] > 0
    assert (
        bp["frames_dropped"].get("no_contact", 0) + bp["frames_partial_contact"]
        == (c["frames_with_air"])
    )
    assert bp["frames_dropped"]["no_contact"] >= c["frames_off_skin"]
    # the breathing is found and removed: the bone points lie on the still bone again
    assert bp["breathing"]["compensated"]
    assert bp["breathing"]["freq_hz"] == pytest.approx(0.2, abs=0.01)
    assert bp["breathing"]["rms_error_mm"] < 0.1
    assert bp["median_mm"] <= 0.5 and bp["within_1mm"] >= 0.9
    assert c["breathing_mm"] == 3.0 and c["xray_shift_mm"] == 2.0


def test_a_spine_of_meshes_in_relation_runs_the_whole_chain(tmp_path):
    # usx pipeline --meshes: per-level PLYs (no part labels, no table pose) laid prone
    import open3d as o3d

    from usx_model.evaluation.real import spine_from_meshes

    for lv, vm in generate_spine(31337).vertebrae.items():
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(vm.vertices_mm + [5.0, -30.0, 250.0]),
            o3d.utility.Vector3iVector(vm.faces),
        )
        o3d.io.write_triangle_mesh(str(tmp_path / f"case_L{lv}.ply"), mesh)
    torch.manual_seed(0)
    models = [USXComplete(tiny_config(v)) for v in ("full", "us_only")]
    res = run_offline(spine_from_meshes(tmp_path), *models, seed=1, sweep_speed_mm_s=40.0)
    r = res.report
    assert r["spine_id"] == "case"
    assert r["bone_points"]["median_mm"] <= 0.5 and r["bone_points"]["within_1mm"] >= 0.9
    assert r["xray"]["lateral_error_mm"] <= 2.0
    assert r["level_split"]["accuracy"] >= 0.9
    assert set(res.completed_base_mm) == {1, 2, 3, 4, 5}
