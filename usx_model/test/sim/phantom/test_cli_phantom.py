from __future__ import annotations

import argparse
import json
import os

import pytest

from usx_model.bench import phantom as bench_phantom
from usx_model.cli.main import main


def test_generate_writes_deterministic_spine_folders(tmp_path, capsys):
    out = str(tmp_path / "a")
    args = ["phantom", "generate", "--seed", "40", "--count", "2", "--out", out]
    args += ["--max-cobb-deg", "5"]
    assert main([*args, "--spacing-mm", "1.3", "--label-spacing-mm", "2", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["spines"]
    assert [os.path.basename(p) for p in listed] == ["phantom-s000040", "phantom-s000041"]
    for folder in listed:
        assert os.path.isfile(os.path.join(folder, "L3.ply"))
        assert os.path.isfile(os.path.join(folder, "labels.nii.gz"))
    # The same seed gives byte-identical meshes.
    out_b = str(tmp_path / "b")
    assert main(["phantom", "generate", "--seed", "41", "--out", out_b, "--spacing-mm", "1.3",
                 "--label-spacing-mm", "2", "--max-cobb-deg", "5"]) == 0  # fmt: skip
    with open(os.path.join(listed[1], "L2.ply"), "rb") as fa:
        with open(os.path.join(out_b, "phantom-s000041", "L2.ply"), "rb") as fb:
            assert fa.read() == fb.read()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["phantom", "generate", "--count", "0", "--out", "X"], "--count must be >= 1"),
        (["phantom", "generate", "--seed", "-3", "--out", "X"], "--seed must be >= 0"),
        (["phantom", "realism", "--n", "0"], "--n must be >= 1"),
        (["phantom", "realism", "--control", "-1"], "--control must be >= 0, got -1"),
        (["phantom", "realism", "--deform-mm", "7"], "--deform-mm must be 0..5 mm, got 7.0"),
        (["phantom", "realism", "--data", "/nonexistent/dir"], "real vertebrae folder not found"),
        (["phantom", "residuals", "--out", "X.npz", "--n", "0"], "--n must be >= 1, got 0"),
        (["phantom", "residuals", "--out", "X.txt"], "--out must name a .npz file"),
        (
            ["phantom", "residuals", "--out", "X.npz", "--data", "/nonexistent/dir"],
            "real vertebrae folder not found",
        ),
        (
            ["phantom", "realism", "--residuals", "/nonexistent/lib.npz"],
            "residual library not found: /nonexistent/lib.npz",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys, tmp_path):
    argv = [a if a != "X" else str(tmp_path / "x") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_benchmark_reports_throughput():
    args = argparse.Namespace(runs=1, spines=1, spacing_mm=1.4)
    result = bench_phantom.run(args)
    assert result["spines_per_s"] > 0
    assert result["vertebrae_per_s"] == pytest.approx(5 * result["spines_per_s"])
    assert result["median_vertices_per_vertebra"] > 1000


def test_preview_writes_a_png(tmp_path, capsys):
    out = str(tmp_path / "p.png")
    assert main(["phantom", "preview", "--seed", "2", "--out", out, "--spacing-mm", "1.4"]) == 0
    with open(out, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert main(["phantom", "preview", "--out", str(tmp_path / "p.jpg")]) == 2
    assert "--out must name a .png file" in capsys.readouterr().err
