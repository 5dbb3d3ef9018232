"""Aggregation and paired tests of the evaluation against direct numpy/scipy calls."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from usx_model.evaluation.stats import (
    ANATOMICAL_SUBSETS,
    HALFSPACE_SUBSETS,
    METRICS,
    aggregate,
    json_safe,
    metric_arrays,
    ordered_methods,
    paired_tests,
    summarise,
)

RNG = np.random.default_rng(7)


@pytest.mark.parametrize(
    "values",
    [
        RNG.gamma(2.0, 1.5, 40),
        np.array([3.0]),
        np.array([1.0, np.nan, 4.0, 2.5, np.inf]),
    ],
)
def test_aggregate_matches_numpy_on_finite_values(values):
    finite = values[np.isfinite(values)]
    got = aggregate(values)
    assert got["n"] == finite.size
    assert got["mean"] == pytest.approx(np.mean(finite), rel=1e-12)
    assert got["std"] == pytest.approx(np.std(finite), rel=1e-12, abs=1e-15)
    assert got["median"] == pytest.approx(np.median(finite), rel=1e-12)


def test_aggregate_of_no_finite_value_is_null():
    assert aggregate(np.array([np.nan, np.nan])) == {
        "mean": None,
        "std": None,
        "median": None,
        "n": 0,
    }


def test_paired_tests_match_direct_scipy_calls():
    a = RNG.gamma(2.0, 1.0, 30)
    b = a + RNG.normal(0.4, 0.5, 30)
    got = paired_tests(a, b)
    assert got["n"] == 30
    assert got["wilcoxon"] == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    assert got["shapiro"] == pytest.approx(stats.shapiro(b - a).pvalue, rel=1e-12)
    assert got["median_difference"] == pytest.approx(np.median(b - a))


def test_paired_tests_drop_pairs_with_a_nan_on_either_side():
    a = RNG.normal(5, 1, 12)
    b = a + RNG.normal(0.5, 0.3, 12)
    a[2], b[7] = np.nan, np.nan
    keep = np.ones(12, bool)
    keep[[2, 7]] = False
    got = paired_tests(a, b)
    assert got["n"] == 10
    assert got["wilcoxon"] == pytest.approx(stats.wilcoxon(a[keep], b[keep]).pvalue)


@pytest.mark.parametrize(
    ("a", "b", "wilcoxon", "shapiro"),
    [
        (np.ones(5), np.ones(5), None, None),  # identical: no test is defined
        (np.array([np.nan, 1.0]), np.array([2.0, np.nan]), None, None),  # no pair left
        (np.array([1.0, 2.0]), np.array([1.5, 2.7]), "p", None),  # too few for Shapiro
    ],
)
def test_paired_tests_return_null_where_undefined(a, b, wilcoxon, shapiro):
    got = paired_tests(a, b)
    assert (got["wilcoxon"] is None) == (wilcoxon is None)
    assert got["shapiro"] is shapiro


def test_paired_tests_reject_unequal_lengths():
    with pytest.raises(ValueError, match=r"expected equal lengths, got \(3,\) and \(4,\)"):
        paired_tests(np.ones(3), np.ones(4))


def _rows(k: int, shift: float) -> list[dict]:
    keys = [p + s for p in {*ANATOMICAL_SUBSETS.values()} for s in METRICS.values()]
    return [{key: float(RNG.gamma(2.0) + shift) for key in keys} for _ in range(k)]


def test_metric_arrays_map_json_names_onto_metric_keys():
    rows = [{"cd_l1_mm": 1.0, "cd_l2_x1e4": 2.0, "emd_mm": 3.0, "f1": 0.5}]
    rows[0].update({f"{p}_{k}": 9.0 for p in ("arch_hs", "body_hs") for k in rows[0]})
    got = metric_arrays(rows, HALFSPACE_SUBSETS)
    assert got["whole"]["cd_x1e4"][0] == 2.0
    assert got["whole"]["emd"][0] == 3.0 and got["whole"]["f1_1mm"][0] == 0.5
    assert got["body"]["cd_l1_mm"][0] == 9.0  # body is the half-space body here
    with pytest.raises(ValueError, match="metric 'arch_cd_l1_mm' missing for vertebrae"):
        metric_arrays(rows, ANATOMICAL_SUBSETS)


def test_summarise_follows_the_json_contract_and_tests_full_against_the_others():
    k = 9
    levels = np.array([1, 2, 3, 4, 5, 1, 2, 3, 4])
    values = {
        m: metric_arrays(_rows(k, shift), ANATOMICAL_SUBSETS)
        for m, shift in (("us_only", 1.0), ("full", 0.0), ("lf_only", 0.5))
    }
    out = summarise(values, levels)
    assert list(out["methods"]) == ["full", "us_only", "lf_only"]
    assert out["n_vertebrae"] == k
    assert set(out["wilcoxon"]) == {"full_vs_us_only", "full_vs_lf_only"}
    for m in out["methods"]:
        for s in ("whole", "arch", "body"):
            for metric in ("cd_l1_mm", "cd_x1e4", "emd", "f1_1mm"):
                assert set(out["methods"][m][s][metric]) >= {"mean", "std", "median"}
    ref, other = values["full"]["body"]["cd_l1_mm"], values["us_only"]["body"]["cd_l1_mm"]
    assert out["wilcoxon"]["full_vs_us_only"]["body"]["cd_l1_mm"] == pytest.approx(
        stats.wilcoxon(ref, other).pvalue
    )
    assert out["shapiro"]["full_vs_us_only"]["body"]["cd_l1_mm"] == pytest.approx(
        stats.shapiro(other - ref).pvalue
    )
    l1 = out["per_level"]["full"]["L1"]["whole"]["cd_l1_mm"]
    assert l1["mean"] == pytest.approx(values["full"]["whole"]["cd_l1_mm"][levels == 1].mean())
    assert l1["n"] == 2


def test_summarise_without_full_has_no_tests():
    values = {"us_only": metric_arrays(_rows(4, 0.0), ANATOMICAL_SUBSETS)}
    assert summarise(values, np.array([1, 2, 3, 4]))["wilcoxon"] == {}


def test_json_safe_makes_strict_json():
    obj = {"a": np.float64(math.nan), "b": [np.int64(3), math.inf], 4: np.float32(1.5)}
    text = json.dumps(json_safe(obj), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [3, None], "4": 1.5}


def test_ordered_methods_puts_the_paper_order_first():
    assert ordered_methods(["x", "lf_only", "us_only", "full"]) == [
        "full",
        "us_only",
        "lf_only",
        "x",
    ]
