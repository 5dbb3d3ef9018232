"""evaluation.uncertainty: quantiles, scale and coverage against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from usx_model.evaluation.uncertainty import (
    coverage,
    fit_scale,
    half_normal_quantile,
    rank_stats,
)


def test_half_normal_quantile_matches_sampling():
    z = np.abs(np.random.default_rng(0).normal(size=400_000))
    for p in (0.5, 0.68, 0.9, 0.95):
        assert np.mean(z <= half_normal_quantile(p)) == pytest.approx(p, abs=3e-3)
    assert half_normal_quantile(0.6827) == pytest.approx(1.0, abs=1e-3)


def test_a_well_calibrated_uncertainty_covers_at_nominal_rates_and_fits_scale_one():
    rng = np.random.default_rng(1)
    u = rng.uniform(0.2, 2.0, 200_000)
    e = np.abs(rng.normal(size=u.shape)) * u  # error ~ |N(0, u^2)|
    assert fit_scale(u, e) == pytest.approx(1.0, abs=0.01)
    for p, got in coverage(u, e, 1.0).items():
        assert got == pytest.approx(p, abs=5e-3)
    # an uncertainty three times too small: the fitted scale undoes it
    assert fit_scale(u / 3, e) == pytest.approx(3.0, rel=0.01)
    assert coverage(u / 3, e, 1.0)[0.68] < 0.3


def test_coverage_counts_points_inside_the_interval():
    u = np.array([1.0, 1.0, 2.0, 2.0])
    e = np.array([0.5, 1.5, 1.0, 3.0])
    z = half_normal_quantile(0.5)  # 0.674
    assert coverage(u, e, 1.0, [0.5]) == {0.5: np.mean(e <= z * u)}


def test_rank_stats_pool_and_per_vertebra():
    rng = np.random.default_rng(2)
    a = [rng.normal(size=50) for _ in range(3)]
    b = [x + rng.normal(size=50) for x in a]
    got = rank_stats(a, b)
    per = [spearmanr(x, y)[0] for x, y in zip(a, b, strict=True)]
    assert got["pooled"] == pytest.approx(spearmanr(np.concatenate(a), np.concatenate(b))[0])
    assert got["per_vertebra_median"] == pytest.approx(np.median(per))
    assert got["per_vertebra_min"] == pytest.approx(min(per))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: half_normal_quantile(1.0), "p: expected 0 < p < 1, got 1.0"),
        (lambda: fit_scale(np.ones(3), np.ones(4)), "u, e: expected equal"),
        (lambda: fit_scale(np.zeros(3), np.ones(3)), "u > 0"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _args(*argv: str):
    import argparse

    from usx_model.evaluation.uncertainty import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_pipeline_seeds_parse():
    assert _args("--pipeline-seeds", "9101,9102").pipeline_seeds == (9101, 9102)
    with pytest.raises(SystemExit):
        _args("--pipeline-seeds", "9101,x")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "give --data H5, --real DIR, --pipeline-seeds or --pipeline-meshes"),
        (("--pipeline-seeds", "1", "--fit", "x.json"), "use --fit and --error-scale with"),
        (("--pipeline-seeds", "1", "--error-scale", "other.json"), "publishes the shipped"),
        (("--pipeline-meshes", "m", "--fit", "x.json"), "use --fit and --error-scale with"),
    ],
)
def test_run_refuses(argv, message):
    from usx_model.evaluation.uncertainty import run

    with pytest.raises(SystemExit, match=message):
        run(_args(*argv))


def test_pipeline_meshes_must_be_one_lumbar_spine(tmp_path):
    from usx_model.evaluation.uncertainty import run

    with pytest.raises(FileNotFoundError, match=r"--meshes: .* is not a folder"):
        run(_args("--pipeline-meshes", str(tmp_path / "none")))
