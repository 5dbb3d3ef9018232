"""evaluation.gate: what the gate reads of an evaluation set (own points, own frame)."""

from __future__ import annotations

import numpy as np

from usx_model.evaluation.gate import OWN_MM, gate_frames, own_points
from usx_model.evaluation.pipeline import EvalSet


def test_own_points_are_those_on_the_vertebra_surface():
    # the true surface: a plane z = 0 sampled every 1 mm; a neighbour's points 10 mm above
    g = np.stack(np.meshgrid(np.arange(-20.0, 21.0), np.arange(-20.0, 21.0)), -1).reshape(-1, 2)
    gt = np.c_[g, np.zeros(len(g))]
    rng = np.random.default_rng(2)
    own = np.c_[rng.uniform(-15, 15, (50, 2)), rng.normal(0.0, 0.3, 50)]
    near = np.c_[rng.uniform(-15, 15, (5, 2)), np.full(5, OWN_MM - 0.5)]
    other = np.c_[rng.uniform(-15, 15, (30, 2)), np.full(30, 10.0)]
    mask = own_points(np.vstack([own, near, other]), gt)
    assert mask[:55].all() and not mask[55:].any()


def test_gate_frames_tilt_vertebrae_of_a_spine_and_leave_loose_ones():
    tilt = np.radians(20.0)
    body = np.random.default_rng(3).normal(0.0, 3.0, (64, 3))
    at = {4: np.zeros(3), 5: np.array([0.0, 30.0 * np.sin(tilt), -30.0 * np.cos(tilt)])}
    names = ["s1-L4", "s1-L5", "loose-L5"]
    evalset = EvalSet(
        names=names,
        levels=np.array([4, 5, 5]),
        us=[body] * 3,
        xray=[body + at[4], body + at[5], body + at[5]],
        gt=np.zeros((3, 8, 3)),
        gt_part=None,
        split="halfspace",
        meta={"real_cases": [{"neighbours": True}, {"neighbours": True}, {"neighbours": False}]},
    )
    frames = gate_frames(evalset)
    expected_s = [0.0, -np.sin(tilt), np.cos(tilt)]  # L4 - L5 centroids: cranial, anterior
    assert np.allclose(frames[0][2], expected_s) and np.allclose(frames[1][2], expected_s)
    assert np.array_equal(frames[2], np.eye(3))  # alone: its own frame already
