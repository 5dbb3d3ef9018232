from __future__ import annotations

import json

import numpy as np
import pytest

from usx_model.base.parts import Part
from usx_model.sim.phantom.morphometry import REAL_EXTENT_RANGES_MM
from usx_model.sim.phantom.spine import generate_spine, in_real_range, spine_id_for_seed


@pytest.fixture(scope="module")
def spines():
    return [generate_spine(seed) for seed in (11, 12, 13)]


def test_same_seed_gives_identical_arrays_and_other_seed_differs(spines):
    again = generate_spine(11)
    for lv in range(1, 6):
        a, b = spines[0].vertebrae[lv], again.vertebrae[lv]
        np.testing.assert_array_equal(a.vertices_mm, b.vertices_mm)
        np.testing.assert_array_equal(a.faces, b.faces)
        np.testing.assert_array_equal(a.part, b.part)
    assert spines[0].params == again.params and spines[0].frames == again.frames
    assert not np.array_equal(
        spines[0].vertebrae[3].vertices_mm, spines[1].vertebrae[3].vertices_mm
    )


def test_ids_params_and_frames_are_json_ready(spines):
    s = spines[0]
    assert s.spine_id == spine_id_for_seed(11) == "phantom-s000011"
    assert s.levels == [1, 2, 3, 4, 5]
    json.dumps(s.params)
    json.dumps(s.frames)
    assert {"T_table_spine", "T_spine_L1", "T_spine_L5"} <= set(s.frames)
    t = np.array(s.frames["T_table_spine"])
    np.testing.assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-12)


def test_bounding_boxes_inside_real_ranges(spines):
    lo = np.array([r[0] for r in REAL_EXTENT_RANGES_MM.values()])
    hi = np.array([r[1] for r in REAL_EXTENT_RANGES_MM.values()])
    for s in spines:
        for m in s.vertebrae.values():
            ext = np.ptp(m.vertices_mm, axis=0)
            assert np.all(ext >= lo) and np.all(ext <= hi), ext
    assert not in_real_range(np.array([[0, 0, 0], [200.0, 80, 50]]))


def test_levels_stack_upwards_with_disc_gaps(spines):
    for s in spines:
        z = [s.vertebrae[lv].body_centroid_mm[2] for lv in range(1, 6)]
        gaps = -np.diff(z)  # L1 is highest
        assert np.all(gaps > 30) and np.all(gaps < 50), gaps
        np.testing.assert_allclose(
            np.mean([s.vertebrae[lv].body_centroid_mm for lv in range(1, 6)], axis=0),
            0.0,
            atol=1.5,
        )


def test_frames_place_the_vertebra_frame_body_centre(spines):
    for s in spines:
        for lv, m in s.vertebrae.items():
            t = np.array(s.frames[f"T_spine_L{lv}"])
            # The body primitive is centred on the vertebra frame's origin.
            assert np.linalg.norm(t[:3, 3] - m.body_centroid_mm) < 2.0


def test_body_width_grows_from_l1_to_l5_on_average(spines):
    widths = np.zeros(5)
    for s in spines:
        for lv, m in s.vertebrae.items():
            t = np.array(s.frames[f"T_spine_L{lv}"])
            local = (m.vertices_mm - t[:3, 3]) @ t[:3, :3]
            widths[lv - 1] += np.ptp(local[m.part == Part.BODY, 0])
    assert np.all(np.diff(widths / len(spines)) > 0), widths


def test_level_subset_reproduces_the_full_spine_vertebra(spines):
    sub = generate_spine(11, levels=(2,))
    full = spines[0]
    if sub.params["attempts"] == full.params["attempts"]:
        assert sub.params["morphometry"]["L2"] == full.params["morphometry"]["L2"]
    assert sub.levels == [2]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"seed": -1}, "expected a non-negative integer seed"),
        ({"seed": 1.5}, "expected a non-negative integer seed"),
        ({"seed": 1, "levels": (0, 1)}, "expected levels within 1..5"),
        ({"seed": 1, "levels": ()}, "expected levels within 1..5"),
        ({"seed": 1, "max_cobb_deg": 90.0}, "expected max_cobb_deg in"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_spine(**kwargs)


def _body_width_mm(spine, level: int) -> float:
    """Left-right extent of the body's vertices in the vertebra's own frame."""
    v = spine.vertebrae[level]
    T = np.linalg.inv(np.asarray(spine.frames[f"T_spine_L{level}"]))
    own = v.vertices_mm @ T[:3, :3].T + T[:3, 3]
    return float(np.ptp(own[v.part == Part.BODY, 0]))


@pytest.mark.parametrize("rejected_draws", [0, 1], ids=["first_draw", "after_a_redraw"])
def test_at_mean_rebuilds_the_same_patient_with_only_those_parameters_changed(
    monkeypatch, rejected_draws
):
    import usx_model.sim.phantom.spine as spine_mod

    calls = {"n": 0}

    def in_range_after_redraws(vertices_mm):  # the first draw(s) of each call fail
        calls["n"] += 1  # a failed draw stops at its first mesh (all() short-circuits)
        return calls["n"] > rejected_draws

    monkeypatch.setattr(spine_mod, "in_real_range", in_range_after_redraws)
    true = generate_spine(21, levels=(3,))
    calls["n"] = 0
    oracle = generate_spine(21, levels=(3,), at_mean=("body_width_mm",))
    assert true.params["attempts"] == oracle.params["attempts"] == 1 + rejected_draws
    assert oracle.params["at_mean"] == ["body_width_mm"] and "at_mean" not in true.params
    t, o = true.params["morphometry"]["L3"], oracle.params["morphometry"]["L3"]
    assert {k for k in t if t[k] != o[k]} == {"body_width_mm"}
    assert true.params["posture"] == oracle.params["posture"]
    for name, T in true.frames.items():
        np.testing.assert_array_equal(oracle.frames[name], T)
    # the meshes follow the parameter (marching cubes at 0.9 mm)
    change = _body_width_mm(oracle, 3) - _body_width_mm(true, 3)
    assert change == pytest.approx(o["body_width_mm"] - t["body_width_mm"], abs=0.3)
