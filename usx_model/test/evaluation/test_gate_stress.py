"""evaluation.gate_stress: the degradations do what their names say; the summary counts."""

from __future__ import annotations

import numpy as np
import pytest

from usx_model.completion.quality import FEATURES
from usx_model.evaluation.gate_stress import FAILED_MM, summarise_rows, variants


def test_variants_degrade_as_named():
    rng = np.random.default_rng(0)
    us = rng.normal(0.0, 10.0, (1024, 3))
    xray = rng.normal(0.0, 5.0, (512, 3))
    out = list(variants(us, xray, np.random.default_rng(1)))
    got = {name: (u, x) for name, u, x, _ in out}
    for name, u, _, kept in out:  # each degraded point comes from the clean point named
        if name != "us_noise3":
            assert np.array_equal(u, us[kept]), name
    assert np.std(out[4][1] - us[out[4][3]]) == pytest.approx(3.0, rel=0.05)
    assert list(got) == [
        "clean", "us_patch150", "us_patch400", "us_half", "us_noise3",
        "xray_cranial15", "xray_cranial30", "xray_posterior15", "xray_anterior20",
    ]  # fmt: skip
    assert got["clean"][0] is us and got["clean"][1] is xray
    assert len(got["us_patch150"][0]) == 150 and len(got["us_patch400"][0]) == 400
    patch = got["us_patch150"][0]
    centre_d = np.linalg.norm(us[:, None] - patch[None], axis=2).min(1)
    assert (centre_d == 0).sum() == 150  # the patch is made of observed points
    half = got["us_half"][0]
    assert len(half) == 512 and (half[:, 0] > np.median(us[:, 0])).all()
    assert np.std(got["us_noise3"][0] - us) == pytest.approx(3.0, rel=0.05)
    for name, shift in [
        ("xray_cranial15", [0, 0, 15]),
        ("xray_cranial30", [0, 0, 30]),
        ("xray_posterior15", [0, 15, 0]),
        ("xray_anterior20", [0, -20, 0]),
    ]:
        assert np.allclose(got[name][1] - xray, shift), name
        assert got[name][0] is us


def test_summary_counts_failures_passed_as_ok():
    base = {**dict.fromkeys(FEATURES, float("nan")), "us_points": 1.0}
    rows = [
        {"set": "a", "variant": "v", "cd_l1_mm": 1.0, "status": "ok", **base},
        {"set": "a", "variant": "v", "cd_l1_mm": FAILED_MM + 1, "status": "ok", **base},
        {"set": "a", "variant": "v", "cd_l1_mm": FAILED_MM + 2, "status": "low_confidence", **base},
        {"set": "b", "variant": "v", "cd_l1_mm": 2.0, "status": "ok", **base},
    ]
    s = summarise_rows(rows)
    assert s["a/v"]["n"] == 3 and s["a/v"]["failed"] == 2 and s["a/v"]["failed_but_ok"] == 1
    assert s["a/v"]["statuses"] == {"ok": 2, "low_confidence": 1}
    assert s["a/v"]["cd_l1_mm_median"] == pytest.approx(FAILED_MM + 1)
    assert list(s["a/v"]["features_p5_p50_p95"]) == ["us_points"]  # the rest never measured
    assert s["b/v"]["failed"] == 0
