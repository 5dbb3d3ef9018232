"""The phantom's scenario: parameters -> spine, plan, frames, X-ray, ground truth."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from usx_model.base.transforms import apply_transform
from usx_model.sim import scenario as scenario_mod
from usx_model.sim.probe import ProbeKind
from usx_model.sim.scenario import (
    ScenarioConfig,
    build_scenario,
    ground_truth,
    plan_sweep,
    probe_model,
    simulated_calibration,
)
from usx_model.tracking.calibration import (
    ImageCalibration,
    ProbeCalibration,
    load_probe_calibration,
)


def _calibration(width_px: int, spacing_mm: float) -> ProbeCalibration:
    """The shipped calibration (hand-eye 150 mm out) with this image geometry."""
    cal = load_probe_calibration()
    image = ImageCalibration.centred_on_face(width_px, (spacing_mm, spacing_mm))
    return ProbeCalibration(image, cal.T_ee_probe, cal.T_probe_image)


#: A small, fast scenario: a 64 x 64 probe, one pass at 20 mm/s.
SMALL = ScenarioConfig(
    sweep_speed_mm_s=20.0,
    lateral_offsets_mm=(0.0,),
    rows=64,
    cols=64,
    calibration=_calibration(64, 60.0 / 64),
    xray_pixel_mm=2.0,
    ground_truth_points_per_level=32,
)


def test_from_params_picks_the_fields_by_name():
    params = SimpleNamespace(spine_seed=3, rows=128, loop=True, calibration="ignored")
    cal = _calibration(512, 0.15)
    cfg = ScenarioConfig.from_params(params, cal)
    assert (cfg.spine_seed, cfg.rows, cfg.cols) == (3, 128, 512) and cfg.calibration is cal


def test_probe_model_takes_the_pixel_spacing_from_the_calibration():
    cfg = ScenarioConfig(
        rows=100, cols=80, probe_kind="curvilinear", calibration=_calibration(80, 0.5)
    )
    probe = probe_model(cfg)
    assert probe.kind is ProbeKind.CURVILINEAR and probe.shape == (100, 80)
    assert probe.pixel_mm == 0.5 and probe.depth_mm == pytest.approx(50.0)


def test_the_shipped_calibration_is_the_default():
    cal = simulated_calibration(ScenarioConfig())
    assert cal.image.spacing_mm == (0.15, 0.15)
    np.testing.assert_allclose(cal.T_ee_probe[:3, 3], [0.0, 0.0, 150.0])


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        (
            ProbeCalibration(ImageCalibration((0.1, 0.2), (31.5, -0.5))),
            r"square pixels: expected equal spacing_mm, got 0.1, 0.2",
        ),
        (
            ProbeCalibration(ImageCalibration.centred_on_face(512, (0.15, 0.15))),
            r"face centre of a 64-column image, \(31.5, -0.5\): got origin_px \(255.5, -0.5\)",
        ),
        (
            ProbeCalibration(
                ImageCalibration.centred_on_face(64, (0.15, 0.15)), np.eye(4), np.eye(4)
            ),
            r"expected the default T_probe_image",
        ),
    ],
    ids=["rectangular_pixels", "origin_of_another_width", "rotated_image_plane"],
)
def test_calibrations_the_simulator_cannot_render_are_refused(calibration, message):
    with pytest.raises(ValueError, match=message):
        probe_model(ScenarioConfig(rows=64, cols=64, calibration=calibration))


@pytest.fixture(scope="module")
def toy_scenario(toy_spine):
    mp = pytest.MonkeyPatch()
    mp.setattr(scenario_mod, "load_spine", lambda cfg: toy_spine)
    try:
        yield build_scenario(SMALL, probe_model(SMALL))
    finally:
        mp.undo()


def test_build_scenario(toy_scenario):
    sc = toy_scenario
    assert sc.plan.n_frames > 2 and sc.sim.probe.shape == (64, 64)
    assert sc.render(0).shape == (64, 64) and sc.render(0).dtype == np.uint8
    xray = sc.xray
    assert xray.labelled and xray.image.shape == xray.label.shape == xray.geometry.shape
    assert set(np.unique(xray.label)) <= {0, *sc.spine.levels} and xray.label.any()
    assert xray.plane_point_mm.shape == (3,)
    n = SMALL.ground_truth_points_per_level * len(sc.spine.levels)
    truth = sc.truth
    assert truth.points_mm.shape == (n, 3) and truth.level.dtype == truth.part.dtype == np.uint8
    assert sorted(set(truth.level)) == sc.spine.levels


def test_ground_truth_is_in_the_base_frame(toy_spine, toy_scenario):
    plan = toy_scenario.plan
    truth = ground_truth(toy_spine, plan, 16)
    # back in the spine frame every level's samples lie on its own vertebra's bounding box
    local = apply_transform(np.linalg.inv(plan.T_base_spine), truth.points_mm)
    for lv in toy_spine.levels:
        verts = toy_spine.vertebrae[lv].vertices_mm
        pts = local[truth.level == lv]
        assert np.all(pts >= verts.min(0) - 1e-6) and np.all(pts <= verts.max(0) + 1e-6)


def test_options_leave_out_the_xray_and_its_depth(toy_spine, monkeypatch):
    monkeypatch.setattr(scenario_mod, "load_spine", lambda cfg: toy_spine)
    no_xray = replace(SMALL, publish_xray=False)
    assert build_scenario(no_xray, probe_model(no_xray)).xray is None
    no_depth = replace(SMALL, xray_depth_registered=False)
    assert build_scenario(no_depth, probe_model(no_depth)).xray.plane_point_mm is None


def test_plan_sweep_uses_the_config(toy_spine, toy_scenario):
    # 9 frames: fewer would move the toy sweep's first joint faster than the iiwa allows
    plan = plan_sweep(toy_spine, replace(SMALL, n_frames=9))
    assert plan.n_frames == 9 and plan.path_length_mm == toy_scenario.plan.path_length_mm
    assert toy_scenario.plan.speed_mm_s == pytest.approx(20.0, rel=0.05)


def test_lab_conditions_move_the_spine_and_lift_the_probe(toy_spine, toy_scenario, monkeypatch):
    monkeypatch.setattr(scenario_mod, "load_spine", lambda cfg: toy_spine)
    cfg = replace(SMALL, breathing_mm=3.0, contact_loss_frac=0.3)
    sc = build_scenario(cfg, probe_model(cfg))
    d, share = sc.disturbed.breathing_mm, sc.disturbed.air_share
    assert np.ptp(d) <= 3.0 + 1e-9 and np.ptp(d) > 1.0
    lost = np.flatnonzero(share)
    assert len(lost) == round(0.3 * sc.plan.n_frames)
    # a frame off the skin is the air pattern, unlike the still frame of the same pose
    off = lost[np.abs(share[lost]) == 1.0]
    if len(off):
        assert not np.array_equal(sc.render(off[0]), toy_scenario.render(off[0]))
    # the defaults leave the frames as they were
    assert toy_scenario.disturbed is None
    with pytest.raises(ValueError, match="contact_loss_frac must lie in"):
        build_scenario(replace(SMALL, contact_loss_frac=0.95), probe_model(SMALL))
