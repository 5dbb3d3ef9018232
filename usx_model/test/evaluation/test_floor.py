"""The sampling floor: a true-surface sample, scored like a prediction, on a phantom file."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import open3d as o3d
import pytest

from usx_model.cli.main import main
from usx_model.dataset.builder import BuildOptions, build_dataset
from usx_model.dataset.schema import read_attrs, read_samples
from usx_model.evaluation.floor import floor_metrics, summarise_floor
from usx_model.evaluation.pipeline import dataset_eval_set
from usx_model.sim.phantom.spine import generate_spine


@pytest.fixture(scope="module")
def phantom_h5(module_dir):
    """One phantom spine (5 vertebrae, 512 GT points each), all in the test split."""
    path = module_dir / "phantom.h5"
    options = BuildOptions(n_partial=128, n_xray=64, n_gt=512, norm_points=64, split="test")
    build_dataset(path, 1, seed=5, options=options)
    return path


def _brute_cd_l1(a: np.ndarray, b: np.ndarray) -> float:
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return 0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean())


def test_the_sample_lies_on_the_true_surface_and_scores_its_chamfer(phantom_h5, monkeypatch):
    # capture the sample the floor scores (score_one's first argument)
    import usx_model.evaluation.floor as floor

    seen = []
    real_score = floor.score_one
    monkeypatch.setattr(
        floor, "score_one", lambda p, ev, k, s, e: seen.append(p) or real_score(p, ev, k, s, e)
    )
    rows = floor_metrics(dataset_eval_set(phantom_h5, limit=2), 300)
    gt = read_samples(phantom_h5).gt
    spine = generate_spine(read_attrs(phantom_h5)["spine_seeds"][0])
    for k, level in enumerate((1, 2)):
        assert seen[k].shape == (300, 3)
        vert = spine.vertebrae[level]
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(np.asarray(vert.vertices_mm, np.float32)),
            o3d.core.Tensor(np.asarray(vert.faces, np.uint32)),
        )
        dist = scene.compute_distance(o3d.core.Tensor(seen[k].astype(np.float32))).numpy()
        assert dist.max() < 1e-3  # on the bone: no shape error at all
        assert rows[k]["cd_l1_mm"] == pytest.approx(_brute_cd_l1(seen[k], gt[k]), rel=1e-6)
        assert rows[k]["cd_l1_mm"] > 0.5  # two finite samples never coincide


def test_the_floor_falls_as_the_sample_grows(phantom_h5):
    evalset = dataset_eval_set(phantom_h5)

    def whole(n):
        return summarise_floor(floor_metrics(evalset, n), n)["whole"]["cd_l1_mm"]["mean"]

    coarse, fine = whole(256), whole(4096)
    assert 0 < fine < coarse
    summary = summarise_floor(floor_metrics(evalset, 256), 256)
    assert summary["n_points"] == 256 and summary["n_vertebrae"] == 5
    assert set(summary) >= {"whole", "arch", "body", "arch_hs", "body_hs"}
    assert summary["whole"]["cd_l1_mm"]["mean"] == pytest.approx(coarse)


def test_at_mean_samples_the_same_patient_with_those_parameters_at_their_mean(
    phantom_h5, monkeypatch
):
    import usx_model.evaluation.floor as floor

    seen = []
    real_score = floor.score_one
    monkeypatch.setattr(
        floor, "score_one", lambda p, ev, k, s, e: seen.append(p) or real_score(p, ev, k, s, e)
    )
    evalset = dataset_eval_set(phantom_h5)
    hidden = ("body_width_mm", "endplate_concavity_mm")
    true_rows = floor_metrics(evalset, 2048)
    oracle_rows = floor_metrics(evalset, 2048, at_mean=hidden)
    seed = read_attrs(phantom_h5)["spine_seeds"][0]
    true, oracle = generate_spine(seed), generate_spine(seed, at_mean=hidden)

    # the level whose width noise is largest (the patient's deviation repeats per level)
    widths = [
        [s.params["morphometry"][f"L{lv}"]["body_width_mm"] for s in (true, oracle)]
        for lv in range(1, 6)
    ]
    k = int(np.argmax([abs(w[1] - w[0]) for w in widths]))
    half_change = abs(widths[k][1] - widths[k][0]) / 2

    def distance_to(spine, points):
        vert = spine.vertebrae[k + 1]
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(
            o3d.core.Tensor(np.asarray(vert.vertices_mm, np.float32)),
            o3d.core.Tensor(np.asarray(vert.faces, np.uint32)),
        )
        return scene.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()

    assert distance_to(oracle, seen[5 + k]).max() < 1e-3  # sampled from the oracle's surface
    # ... which is not the true one: its walls sit half the width change apart
    assert half_change > 0.2
    assert distance_to(true, seen[5 + k]).max() == pytest.approx(half_change, rel=0.5)
    assert true_rows[k] != oracle_rows[k]
    summary = summarise_floor(oracle_rows, 2048, hidden)
    assert summary["at_mean"] == sorted(hidden)


def test_a_file_without_spine_seeds_is_refused(toy_dataset):
    with pytest.raises(ValueError, match="no 'spine_seeds' attribute; the sampling floor needs"):
        floor_metrics(dataset_eval_set(toy_dataset, "all"), 256)


def test_a_gt_from_another_generator_is_refused(phantom_h5, tmp_path):
    moved = tmp_path / "moved.h5"
    shutil.copy(phantom_h5, moved)
    with h5py.File(moved, "r+") as f:
        f["gt"][0, :, 0] += 0.5
    with pytest.raises(ValueError, match=r"-L1: the regenerated GT differs .* by up to 0\.5 mm"):
        floor_metrics(dataset_eval_set(moved), 256)


def test_bad_point_count_and_a_set_without_a_file(phantom_h5):
    evalset = dataset_eval_set(phantom_h5)
    with pytest.raises(ValueError, match="n_points: expected >= 1, got 0"):
        floor_metrics(evalset, 0)
    evalset.meta.pop("data")
    with pytest.raises(ValueError, match="needs vertebrae read from a phantom dataset file"):
        floor_metrics(evalset, 256)


@pytest.mark.parametrize(
    ("at_mean", "label"),
    [
        ((), "| floor: true surface, 256 points |"),
        (("body_width_mm",), "| floor: true surface, 256 points, at their mean: body_width_mm |"),
    ],
    ids=["true_surface", "width_at_mean"],
)
def test_cli_adds_the_floor_row(phantom_h5, module_dir, tiny_saver, at_mean, label):
    out, report = module_dir / "floor.json", module_dir / f"floor_report_{len(at_mean)}"
    rc = main(
        [
            "evaluate",
            "--data", str(phantom_h5),
            "--weights", str(tiny_saver(module_dir, "full")),
            "--floor", "256",
            *(["--floor-at-mean", ",".join(at_mean)] if at_mean else []),
            "--no-emd",
            "--json", str(out),
            "--report", str(report),
            "--device", "cpu",
            "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    res = json.loads(out.read_text())
    assert res["floor"]["n_points"] == 256 and res["floor"]["n_vertebrae"] == 5
    assert res["floor"]["at_mean"] == list(at_mean)
    rows = floor_metrics(dataset_eval_set(phantom_h5), 256, at_mean=at_mean)
    expected = summarise_floor(rows, 256, at_mean)
    assert res["floor"]["body"]["cd_l1_mm"] == pytest.approx(expected["body"]["cd_l1_mm"])
    assert label in (report / "table.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--floor", "0"], "--floor: expected N >= 1 with --data"),
        (["--floor", "64"], "no 'spine_seeds' attribute"),
        (["--floor-at-mean", "body_width_mm"], "--floor-at-mean: expected together with --floor"),
        (
            ["--floor", "64", "--floor-at-mean", "body_width_mm,girth"],
            "--floor-at-mean: unknown parameters ['girth']; expected names from body_width_mm,",
        ),
        (["--real-alone"], "--real-alone: expected with --real and without --real-loose"),
    ],
)
def test_cli_bad_floor_is_one_line_exit_2(
    tmp_path, toy_dataset, tiny_weights, capsys, extra, message
):
    rc = main(
        [
            "evaluate",
            "--data", str(toy_dataset),
            "--split", "all",
            "--weights", str(tiny_weights("full")),
            *extra,
            "--json", str(tmp_path / "o.json"),
            "--report", str(tmp_path / "r"),
            "--quiet",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert message in err, err
