"""Smoke test of ``usx bench compounding`` on small simulated frames."""

from __future__ import annotations

import argparse

import pytest

from usx_model.bench import compounding as bench


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_bench_times_every_stage_and_fills_the_coverage():
    out = bench.run(_args("--frames", "40", "--size", "128", "--pixel-spacing-mm", "0.6"))
    assert out["frames_timed"] == 40 and "per-level coverage update" in out["included"]
    parts = ("lookup", "segmentation", "insert", "coverage")
    assert all(out[f"median_{p}_ms"] > 0 for p in parts)
    # the phantom's bone under the sweep's path lands in every level's band
    assert all(0.1 < f < 1.0 for f in out["coverage_fractions"].values())


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (("--frames", "1"), "expected --frames >= 2 and --size >= 2, got 1, 512"),
        (("--coverage-every", "0"), "expected --coverage-every >= 1, got 0"),
    ],
)
def test_bench_rejects_bad_arguments(argv, match):
    with pytest.raises(ValueError, match=match):
        bench.run(_args(*argv))
