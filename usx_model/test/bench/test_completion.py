"""Smoke test of ``usx bench completion`` (one timed run, small clouds)."""

from __future__ import annotations

import argparse

import pytest

from usx_model.bench import completion


def _args(**kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    completion.add_arguments(parser)
    argv = ["--runs", "1", "--warmup", "0", "--us-points", "100", "--xray-points", "40"]
    ns = parser.parse_args(argv)
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_reports_required_fields() -> None:
    out = completion.run(_args())
    assert completion.NAME == "completion"
    for key in ("median_s", "runs", "device", "threads"):
        assert key in out
    assert out["runs"] == 1 and out["device"] == "cpu" and out["median_s"] > 0


def test_the_shipped_network_unless_asked_otherwise() -> None:
    from usx_model.weights import shipped_weights

    assert completion.run(_args())["weights"] == str(shipped_weights("full"))
    baseline = completion.run(_args(variant="us_only"))
    assert baseline["weights"] == str(shipped_weights("us_only"))
    assert baseline["variant"] == "us_only"
    untrained = completion.run(_args(untrained=True))
    assert (untrained["weights"], untrained["size"]) == ("untrained", "compact")
    with pytest.raises(ValueError, match="--untrained and --weights: expected one of them"):
        completion.run(_args(untrained=True, weights=str(shipped_weights("full"))))
    with pytest.raises(ValueError, match=r"--variant ef_only: .*pass --weights or --untrained"):
        completion.run(_args(variant="ef_only"))  # no shipped weights of that variant


def test_cuda_without_gpu_is_a_clear_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        completion.run(_args(device="cuda"))
