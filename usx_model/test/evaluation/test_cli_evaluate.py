"""``usx evaluate --data``: JSON contract, independent recomputation, reports, bad input."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import cKDTree

import usx_model.weights as shipped
from usx_model.cli.main import main
from usx_model.dataset.schema import read_samples, write_samples
from usx_model.network.weights import provenance_path, sha256_file

SUBSETS = ("whole", "arch", "body")
METRICS = ("cd_l1_mm", "cd_x1e4", "emd", "f1_1mm")


@pytest.fixture(scope="module")
def evaluated(module_dir, ellipsoid_h5, tiny_saver):
    """One CLI run with a full and a US-only model: (results JSON, its folder)."""
    tmp_path = module_dir
    out = tmp_path / "out.json"
    npz = tmp_path / "pred.npz"
    rc = main(
        [
            "evaluate",
            "--data", str(ellipsoid_h5),
            "--weights", str(tiny_saver(tmp_path, "full")),
            "--weights-baseline", str(tiny_saver(tmp_path, "us_only")),
            "--json", str(out),
            "--report", str(tmp_path / "report"),
            "--save-predictions", str(npz),
            "--device", "cpu",
            "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    return json.loads(out.read_text()), tmp_path


def test_json_contract(evaluated):
    res, _ = evaluated
    assert res["n_vertebrae"] == 10  # two test spines
    assert list(res["methods"]) == ["full", "us_only"]
    for m in ("full", "us_only"):
        for s in SUBSETS:
            for k in METRICS:
                assert set(res["methods"][m][s][k]) >= {"mean", "std", "median"}
    assert set(res["wilcoxon"]) == {"full_vs_us_only"}
    for s in SUBSETS:
        assert set(res["wilcoxon"]["full_vs_us_only"][s]) == set(METRICS)
    assert res["split"] == "anatomical"
    assert len(res["per_vertebra"]) == 10
    assert res["weights"]["full"]["sha256"] != res["weights"]["us_only"]["sha256"]


def test_every_vertebra_carries_the_gate_and_ok_only_statistics_follow_it(evaluated):
    res, _ = evaluated
    statuses = {"ok", "us_only_fallback", "insufficient_us", "insufficient_xray", "low_confidence"}
    for m in ("full", "us_only"):
        rows = [r["methods"][m] for r in res["per_vertebra"]]
        assert all(r["status"] in statuses and 0.0 <= r["confidence"] <= 1.0 for r in rows)
        passed = np.array([r["status"] in ("ok", "us_only_fallback") for r in rows])
        gate = res["gate"][m]
        assert sum(gate["statuses"].values()) == len(rows)
        assert gate["ok_fraction"] == pytest.approx(passed.mean())
        v = _per_vertebra(res, m, "whole", "cd_l1_mm")[passed]
        ok_only = gate["ok_only"]["whole"]["cd_l1_mm"]
        assert ok_only["n"] == passed.sum()
        if passed.any():
            assert ok_only["mean"] == pytest.approx(v.mean())
    flat = [(r["status"], r["confidence"]) for r in res["per_vertebra"]]
    assert flat == [(r["methods"]["full"]["status"], r["methods"]["full"]["confidence"])
                    for r in res["per_vertebra"]]  # fmt: skip


def _per_vertebra(res: dict, method: str, subset: str, metric: str) -> np.ndarray:
    vals = [r["methods"][method][subset][metric] for r in res["per_vertebra"]]
    return np.array([np.nan if v is None else v for v in vals], dtype=np.float64)


def test_statistics_agree_with_numpy_and_scipy_on_the_per_vertebra_values(evaluated):
    res, _ = evaluated
    for m in ("full", "us_only"):
        v = _per_vertebra(res, m, "whole", "cd_l1_mm")
        agg = res["methods"][m]["whole"]["cd_l1_mm"]
        assert agg["mean"] == pytest.approx(v.mean())
        assert agg["std"] == pytest.approx(v.std())
        assert agg["median"] == pytest.approx(np.median(v))
    a = _per_vertebra(res, "full", "whole", "cd_l1_mm")
    b = _per_vertebra(res, "us_only", "whole", "cd_l1_mm")
    want = stats.wilcoxon(a, b).pvalue
    assert res["wilcoxon"]["full_vs_us_only"]["whole"]["cd_l1_mm"] == pytest.approx(want)
    assert res["shapiro"]["full_vs_us_only"]["whole"]["cd_l1_mm"] == pytest.approx(
        stats.shapiro(b - a).pvalue
    )


def _brute_chamfer_l1(p: np.ndarray, g: np.ndarray) -> float:
    return 0.5 * (cKDTree(g).query(p)[0].mean() + cKDTree(p).query(g)[0].mean())


def test_npz_rows_recompute_the_json_cd_l1(evaluated):
    res, tmp = evaluated
    with np.load(tmp / "pred.npz", allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    assert data["method"].dtype.kind == "U" and data["name"].dtype.kind == "U"
    k = len(data["method"])
    assert k == 20  # 10 vertebrae x 2 methods
    assert data["pred"].shape == (k, 128, 3) and data["gt"].shape == (k, 256, 3)
    assert data["gt_part"].shape == (k, 256) and data["gt_part"].dtype == np.uint8
    by_name = {r["name"]: r for r in res["per_vertebra"]}
    for i in range(k):
        want = by_name[str(data["name"][i])]["methods"][str(data["method"][i])]
        got = _brute_chamfer_l1(data["pred"][i], data["gt"][i])
        assert got == pytest.approx(want["whole"]["cd_l1_mm"], rel=1e-5)
        assert int(data["level"][i]) == by_name[str(data["name"][i])]["level"]


def test_reports_are_written(evaluated):
    res, tmp = evaluated
    rep = tmp / "report"
    assert json.loads((rep / "results.json").read_text()) == res
    table = (rep / "table.md").read_text()
    assert "| full |" in table and "| us_only |" in table and "CD-L1 (mm) per level" in table
    pngs = sorted(p.name.split("_")[1] for p in rep.glob("case_*.png"))
    assert pngs == ["best", "median", "worst"]


def test_split_all_with_limit(tmp_path, toy_dataset, tiny_weights):
    out = tmp_path / "all.json"
    argv = ["evaluate", "--data", str(toy_dataset), "--weights", str(tiny_weights("lf_only"))]
    argv += ["--split", "all", "--limit", "3", "--no-emd", "--quiet"]
    assert main([*argv, "--json", str(out), "--report", str(tmp_path / "r")]) == 0
    res = json.loads(out.read_text())
    assert res["n_vertebrae"] == 3 and list(res["methods"]) == ["lf_only"]
    assert res["wilcoxon"] == {} and res["methods"]["lf_only"]["whole"]["emd"]["n"] == 0


def test_no_xray_snap_gives_the_raw_network_output(tmp_path, toy_dataset, tiny_weights):
    from usx_model.network.xray_consistency import silhouette_plane, snap_to_silhouette

    preds = {}
    for flag in ([], ["--no-xray-snap"]):
        out, npz = tmp_path / f"{len(flag)}.json", tmp_path / f"{len(flag)}.npz"
        argv = ["evaluate", "--data", str(toy_dataset), "--weights", str(tiny_weights("full"))]
        argv += [*flag, "--no-emd", "--quiet", "--save-predictions", str(npz)]
        argv += ["--us-snap-mm", "0"]  # the X-ray step alone
        assert main([*argv, "--json", str(out), "--report", str(tmp_path / "r")]) == 0
        assert json.loads(out.read_text())["xray_snap"] == (not flag)
        preds[bool(flag)] = np.load(npz, allow_pickle=False)["pred"]
    xray = read_samples(toy_dataset, "test").xray
    for raw, snapped, x in zip(preds[True], preds[False], xray, strict=True):
        np.testing.assert_allclose(
            snapped, snap_to_silhouette(raw, silhouette_plane(x), [0, 1, 0]), atol=1e-4
        )
    assert np.abs(preds[True] - preds[False]).max() > 0.1  # the toy case moves points


def test_us_snap_scores_the_snapped_points_and_gates_the_raw(tmp_path, toy_dataset, tiny_weights):
    from usx_model.network.us_consistency import snap_to_us_surface

    res, preds = {}, {}
    for mm in ("0", "5"):
        out, npz = tmp_path / f"{mm}.json", tmp_path / f"{mm}.npz"
        argv = ["evaluate", "--data", str(toy_dataset), "--weights", str(tiny_weights("full"))]
        argv += ["--us-snap-mm", mm, "--no-emd", "--quiet", "--save-predictions", str(npz)]
        assert main([*argv, "--json", str(out), "--report", str(tmp_path / "r")]) == 0
        res[mm] = json.loads(out.read_text())
        preds[mm] = np.load(npz, allow_pickle=False)["pred"]
    assert (res["0"]["us_snap_mm"], res["5"]["us_snap_mm"]) == (0.0, 5.0)
    us = read_samples(toy_dataset, "test").us_partial.astype(np.float64)
    for raw, snapped, u in zip(preds["0"], preds["5"], us, strict=True):
        np.testing.assert_allclose(snapped, snap_to_us_surface(raw, u, 5.0), atol=1e-9)
    assert np.abs(preds["0"] - preds["5"]).max() > 0.1  # the toy case moves points
    for a, b in zip(res["0"]["per_vertebra"], res["5"]["per_vertebra"], strict=True):
        assert (a["status"], a["confidence"]) == (b["status"], b["confidence"])


def _corrupt(path, fix_checksum: bool):
    path.write_bytes(b"not a torch archive" * 10)
    if fix_checksum:
        prov = json.loads(provenance_path(path).read_text())
        prov["sha256"] = sha256_file(path)
        provenance_path(path).write_text(json.dumps(prov))
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda t, w, d: ["--weights", str(t / "nope.pt")], "weights file not found: .*nope.pt"),
        (
            lambda t, w, d: ["--weights", str(_corrupt(w("full"), fix_checksum=False))],
            "checksum mismatch",
        ),
        (
            lambda t, w, d: ["--weights", str(_corrupt(w("full"), fix_checksum=True))],
            "is corrupted or not a torch file",
        ),
        (
            lambda t, w, d: ["--weights", str(w("full")), "--weights-baseline", str(w("full", 1))],
            "expected a us_only model, got a full model",
        ),
        (lambda t, w, d: ["--weights", str(w("full")), "--limit", "0"], "--limit: expected >= 1"),
        (
            lambda t, w, d: ["--weights", str(w("full")), "--data", str(t / "missing.h5")],
            "missing.h5 does not exist",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path, toy_dataset, tiny_weights, capsys, make_args, message
):
    args = make_args(tmp_path, tiny_weights, toy_dataset)
    if "--data" not in args:
        args += ["--data", str(toy_dataset)]
    rc = main(
        [
            "evaluate",
            *args,
            "--json",
            str(tmp_path / "o.json"),
            "--report",
            str(tmp_path / "r"),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and err.startswith("usx evaluate: error:")
    assert re.search(message, err), err


def test_data_without_a_test_split(tmp_path, make_toy_samples, tiny_weights, capsys):
    samples = make_toy_samples()
    samples.split[:] = "train"
    path = tmp_path / "train_only.h5"
    write_samples(path, samples, {"seed": 0})
    rc = main(
        [
            "evaluate",
            "--data",
            str(path),
            "--weights",
            str(tiny_weights("full")),
            "--json",
            str(tmp_path / "o.json"),
            "--report",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert "has no vertebrae in split 'test' (it has ['train'])" in err


def test_missing_shipped_weights_are_named(tmp_path, monkeypatch, toy_dataset, capsys):
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path / "weights")
    with pytest.raises(FileNotFoundError, match=r"shipped full weights missing: .*full\.pt"):
        shipped.shipped_weights("full")
    with pytest.raises(ValueError, match="variant: expected one of"):
        shipped.shipped_weights("both")
    rc = main(
        [
            "evaluate",
            "--data",
            str(toy_dataset),
            "--json",
            str(tmp_path / "o.json"),
            "--report",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 2
    assert "shipped full weights missing" in capsys.readouterr().err


def test_shipped_weights_need_their_provenance(tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", tmp_path / "weights")
    src = tiny_weights("us_only")
    dst = tmp_path / "weights" / "us_only.pt"
    dst.write_bytes(src.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"us_only\.pt\.json does not exist"):
        shipped.shipped_weights("us_only")
    provenance_path(dst).write_text(provenance_path(src).read_text())
    assert shipped.shipped_weights("us_only") == dst
