"""Smoke test of ``usx bench segmentation`` (the spine source is swapped for a toy bone)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from usx_model.bench import segmentation as bench


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_bench_reports_time_and_accuracy(monkeypatch, ridge_spine):
    monkeypatch.setattr(bench, "load_spine", lambda source, seed: ridge_spine)
    out = bench.run(_args("--frames", "3", "--runs", "1", "--spine-source", "stacked"))
    assert out["spine_source"] == "stacked" and out["image_shape"] == [512, 512]
    assert 0 < out["median_ms_per_frame"] and 0 < out["median_cpu_ms_per_frame"]
    acc = out["accuracy"]
    assert acc["n_frames"] == 3 and acc["n_points"] > 0
    assert acc["median_distance_mm"] <= 0.1 and acc["meets_targets"]
    assert len(out["accuracy_per_spine"]) == 1


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (("--frames", "0"), "--spines, --frames and --runs must be >= 1, got 1, 0, 3"),
        (("--runs", "0"), "--spines, --frames and --runs must be >= 1, got 1, 120, 0"),
    ],
)
def test_bench_rejects_bad_counts(argv, match):
    with pytest.raises(ValueError, match=match):
        bench.run(_args(*argv))


def test_sources_resolve():
    assert bench.resolve_source("auto") in ("phantom", "stacked")
    assert bench.resolve_source("verse004") == "verse004"
    with pytest.raises(ValueError, match="expected a spine source in"):
        bench.resolve_source("mri")


def test_stacked_spine_is_deterministic_and_ordered_with_discs():
    a, b = bench.stacked_spine(5000, spacing_mm=3.0), bench.stacked_spine(5000, spacing_mm=3.0)
    assert a.levels == [1, 2, 3, 4, 5] and a.spine_id == "stacked-s5000"
    z = [a.vertebrae[lv].body_centroid_mm[2] for lv in a.levels]
    assert all(np.diff(z) < -20.0)  # L1 on top, one body height + a disc apart
    for lv in a.levels:
        np.testing.assert_array_equal(a.vertebrae[lv].vertices_mm, b.vertebrae[lv].vertices_mm)
