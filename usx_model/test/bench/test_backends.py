"""``usx bench backends``: stages, eager reference, missing backends reported."""

from __future__ import annotations

import argparse
import builtins

import pytest

from usx_model.bench import backends


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    backends.add_arguments(parser)
    return parser.parse_args(["--runs", "1", "--warmup", "0", *argv])


def test_eager_times_every_dense_stage() -> None:
    out = backends.run(_args(["--backends", "eager"]))
    stages = out["stages"]
    assert set(stages) == {"coarse", "folding", *(f"attention_unit_{i}" for i in range(1, 5))}
    for row in stages.values():
        assert row["eager"]["median_ms"] > 0 and row["eager"]["max_abs_diff"] == 0.0
    assert out["total_ms"]["eager"] > 0


def test_a_missing_runtime_is_reported_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_onnxruntime(name, *a, **kw):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    out = backends.run(_args(["--backends", "eager,onnxruntime"]))
    row = out["stages"]["coarse"]["onnxruntime"]
    assert row == {"error": "ImportError: No module named 'onnxruntime'"}
    assert out["total_ms"]["onnxruntime"] is None


@pytest.mark.parametrize(
    ("value", "match"),
    [("onnxruntime", "expected 'eager'"), ("eager,tensorrt", "expected 'eager' and any of")],
    ids=["no_eager", "unknown"],
)
def test_bad_backends(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        backends.run(_args(["--backends", value]))
