"""Smoke test of ``usx bench simulate`` on the toy spine (the generator is swapped out)."""

from __future__ import annotations

import argparse

import pytest

from usx_model.bench import simulate as bench


def test_bench_reports_timings_and_acceptance(monkeypatch, toy_spine):
    monkeypatch.setattr(bench, "_spine", lambda seed: toy_spine)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(["--runs", "1", "--frames", "3", "--acceptance"])
    out = bench.run(args)
    for key in ("us_partial_per_spine_s", "xray_per_spine_s", "bmode_per_frame_512x512_s"):
        assert out[key]["runs"] == 1 and out[key]["median_s"] > 0
    assert out["bmode_median_ms_per_frame"] == 1000 * out["bmode_per_frame_512x512_s"]["median_s"]
    acc = out["acceptance"]
    assert 0 <= acc["body_fraction_within_1p5mm"] < acc["posterior_fraction_within_1p5mm"] <= 1
    assert acc["bone_echo_recall_mean"] >= 0.95


def test_bench_rejects_zero_frames(monkeypatch, toy_spine):
    monkeypatch.setattr(bench, "_spine", lambda seed: toy_spine)
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    with pytest.raises(ValueError, match="--spines and --frames must be >= 1, got 1, 0"):
        bench.run(parser.parse_args(["--frames", "0"]))
