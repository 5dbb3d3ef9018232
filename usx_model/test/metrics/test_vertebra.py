"""Per-vertebra metrics against a naive numpy computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from usx_model.base.parts import Part
from usx_model.metrics import vertebra_metrics


def naive(pred: np.ndarray, gt: np.ndarray, scale: float, tau: float) -> dict:
    d = cdist(pred, gt)
    a, b = d.min(1), d.min(0)
    prec, rec = (a < tau).mean(), (b < tau).mean()
    f1 = 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)
    return {
        "cd_l1_mm": 0.5 * (a.mean() + b.mean()),
        "cd_l2_x1e4": ((a**2).mean() + (b**2).mean()) / scale**2 * 1e4,
        "f1": f1,
    }


@pytest.fixture
def shapes():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(300, 3)) * [20.0, 10.0, 15.0]
    part = np.where(gt[:, 1] > 2.0, int(Part.LAMINA), int(Part.BODY))
    pred = gt[::2] + rng.normal(size=(150, 3)) * 0.8
    return pred, gt, part


def test_whole_and_anatomical_subsets(shapes) -> None:
    pred, gt, part = shapes
    out = vertebra_metrics(pred, gt, scale_mm=90.0, gt_part=part, emd_points=None)
    for k, v in naive(pred, gt, 90.0, 1.0).items():
        assert out[k] == pytest.approx(v, rel=1e-9)
    nearest = cdist(pred, gt).argmin(1)
    pred_body = part[nearest] == int(Part.BODY)
    for name, pm, gm in (("arch", ~pred_body, part != 1), ("body", pred_body, part == 1)):
        for k, v in naive(pred[pm], gt[gm], 90.0, 1.0).items():
            assert out[f"{name}_{k}"] == pytest.approx(v, rel=1e-9)
    assert math.isnan(out["emd_mm"])


def test_halfspace_subsets(shapes) -> None:
    pred, gt, _ = shapes
    out = vertebra_metrics(pred, gt, scale_mm=90.0, emd_points=None, f1_threshold_mm=2.0)
    y0 = gt[:, 1].mean()
    ref = naive(pred[pred[:, 1] > y0], gt[gt[:, 1] > y0], 90.0, 2.0)
    for k, v in ref.items():
        assert out[f"arch_hs_{k}"] == pytest.approx(v, rel=1e-9)
    assert "arch_cd_l1_mm" not in out  # anatomical split only with part labels


def test_emd_exact_on_equal_sizes() -> None:
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(64, 3))
    pred = gt + rng.normal(size=gt.shape) * 0.1
    out = vertebra_metrics(pred, gt, scale_mm=1.0, emd_points=1024)
    cost = cdist(pred, gt)
    r, c = linear_sum_assignment(cost)
    assert out["emd_mm"] == pytest.approx(cost[r, c].mean())


def test_empty_subset_is_nan() -> None:
    gt = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    part = np.full(4, int(Part.BODY))
    out = vertebra_metrics(gt, gt, scale_mm=1.0, gt_part=part, emd_points=None)
    assert math.isnan(out["arch_cd_l1_mm"]) and out["body_cd_l2_x1e4"] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pred_mm": np.zeros((0, 3))}, r"pred_mm: empty cloud"),
        ({"gt_mm": np.zeros((5, 2))}, r"gt_mm: expected \(N, 3\) float points, got \(5, 2\)"),
        ({"pred_mm": np.full((5, 3), np.nan)}, "NaN or Inf"),
        ({"scale_mm": 0.0}, "scale_mm: expected > 0"),
        ({"gt_part": np.ones(4)}, r"gt_part: expected \(5,\) labels"),
        ({"gt_part": np.full(5, 9)}, r"gt_part: expected part codes"),
    ],
    ids=["empty", "shape", "nan", "scale", "part_len", "part_code"],
)
def test_bad_input(kwargs, match) -> None:
    rng = np.random.default_rng(0)
    args = {"pred_mm": rng.random((5, 3)), "gt_mm": rng.random((5, 3)), "scale_mm": 1.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        vertebra_metrics(**args)
