"""usx train: a real (tiny) run, resume, DDP with two CPU processes, config errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from usx_model.dataset.schema import read_attrs, read_samples
from usx_model.network.config import tiny_config as tiny_network_config
from usx_model.network.model import USXComplete
from usx_model.network.weights import load_weights
from usx_model.train.config import TrainConfig, load_train_config
from usx_model.train.data import prepare_split
from usx_model.train.loop import train, validate


def test_run_writes_checkpoints_curves_and_weights(tiny_config, tmp_path):
    run = tmp_path / "run"
    record = train(load_train_config(tiny_config), run, progress=False)
    for name in ("config.json", "last.pt", "best.pt", "history.json", "curves.png", "model.pt"):
        assert (run / name).is_file(), name
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]
    assert record["val_cd_l1_mm"] > 0
    model = load_weights(run / "model.pt")
    prov = json.loads((run / "model.pt.json").read_text())
    assert prov["best_epoch"] in (0, 1) and "val_cd_l1_mm" in prov["val_metrics"]
    data = load_train_config(tiny_config).data
    assert prov["dataset"]["content_sha256"] == read_samples(data).content_sha256()
    # how the data were built (phantom options, residual library digest) travels with them
    assert prov["dataset"].get("options") == read_attrs(data).get("options")
    assert model.config.n_out == 128


def test_two_fresh_runs_give_identical_weights(tiny_config, tmp_path):
    # what lets `make train` promise the shipped tensors again on the same machine
    for name in ("a", "b"):
        train(load_train_config(tiny_config), tmp_path / name, progress=False)
    a = torch.load(tmp_path / "a" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "model.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_continues_where_it_stopped(tiny_config, tmp_path):
    run = tmp_path / "run"
    train(load_train_config(tiny_config, epochs=1), run, progress=False)
    first = json.loads((run / "history.json").read_text())
    # A different epoch count is a different config: resuming needs the same one.
    with pytest.raises(ValueError, match="another config"):
        train(load_train_config(tiny_config, epochs=2), run, progress=False)
    cfg2 = load_train_config(tiny_config, epochs=2)
    (run / "config.json").write_text(json.dumps(cfg2.to_dict()))
    train(cfg2, run, progress=False)
    second = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in second] == [0, 1]
    assert second[0] == first[0]


def test_a_run_made_before_a_setting_existed_resumes(tiny_config, tmp_path):
    """A stored config.json without a newer setting means that setting's default."""
    run = tmp_path / "run"
    train(load_train_config(tiny_config, epochs=1), run, progress=False)
    stored = json.loads((run / "config.json").read_text())
    del stored["prior_path"]
    stored["epochs"] = 2  # the one setting changed on purpose, to go on for an epoch
    (run / "config.json").write_text(json.dumps(stored))
    train(load_train_config(tiny_config, epochs=2), run, progress=False, resume=True)
    with pytest.raises(ValueError, match="another config"):
        train(load_train_config(tiny_config, epochs=2, prior_path=False), run, progress=False)


def _state(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def test_validation_reports_the_coarse_spread_and_posterior_sigma(make_toy_samples):
    net_cfg = tiny_network_config()
    split = prepare_split(make_toy_samples(n_spines=3), net_cfg, 128)
    torch.manual_seed(0)
    model = USXComplete(net_cfg)
    record = validate(model, split, torch.device("cpu"), batch_size=4)
    # Independent reference: the whole split in one forward pass.
    with torch.no_grad():
        out = model({"partial": split.partial, "xray": split.xray})
    ref_spread = out["coarse_raw"].double().std(0, unbiased=False).norm(dim=-1).mean()
    assert record["val_coarse_spread"] == pytest.approx(float(ref_spread), rel=1e-4)
    assert record["val_q_sigma"] == pytest.approx(float(out["q_sigma"].mean()), rel=1e-5)
    assert record["val_coarse_spread"] > 0
    # A decoder whose last layer ignores its input emits one template: spread 0.
    torch.nn.init.zeros_(model.coarse.decoder[-1].weight)
    collapsed = validate(model, split, torch.device("cpu"), batch_size=4)
    assert collapsed["val_coarse_spread"] < 1e-6 * record["val_coarse_spread"]


@pytest.mark.parametrize("prior_path", [True, False])
def test_training_reduces_the_loss(tiny_config, tmp_path, prior_path):
    cfg = load_train_config(tiny_config, epochs=4, prior_path=prior_path)
    train(cfg, tmp_path / "run", progress=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["cd_fine"] < history[0]["cd_fine"]
    # Without the prior path the prior is the fixed N(0, I): only q's KL remains.
    assert (history[0]["kl_rec"] > 0) == prior_path and history[0]["kl_g"] > 0


@pytest.mark.parametrize("prior_path", [True, False])
def test_torchrun_two_cpu_processes(tiny_config, tmp_path, prior_path):
    if not prior_path:  # the prior encoder then gets no gradient: DDP must allow it
        tiny_config.write_text(tiny_config.read_text() + "prior_path: false\n")
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    usx = Path(sys.executable).parent / "usx"
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            str(usx),
            "train",
            "--config",
            str(tiny_config),
            "--out",
            str(run),
            "--epochs",
            "1",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1  # one writer (rank 0), one record per epoch
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("data: x.h5\nvariant: nope\n", "'nope' is not a valid Variant"),
        ("data: x.h5\nbogus: 1\n", r"unknown setting\(s\) \['bogus'\]"),
        ("epochs: 2\n", "missing the 'data' setting"),
        ("data: x.h5\nepochs: 0\n", "epochs: expected >= 1"),
        ("- a\n- b\n", "expected a mapping"),
    ],
)
def test_bad_configs(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_train_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_train_config(tmp_path / "nope.yaml")


def test_defaults_are_the_shipped_recipe():
    """TrainConfig's defaults are config/train.yaml: a run without a config is make train's."""
    recipe = Path(__file__).resolve().parents[3] / "config" / "train.yaml"
    shipped = load_train_config(recipe)
    assert shipped == TrainConfig(data=shipped.data)


@pytest.mark.parametrize(
    ("stored", "same"),
    [
        ({}, True),
        ({"prior_path": True}, True),  # made before the setting: the reference's prior path
        ({"ema_decay": 0.0}, True),  # a removed setting, off
        ({"ema_decay": 0.9}, False),  # a removed setting that was on: another run
        ({"epochs": 3}, False),
    ],
)
def test_same_run_reads_old_run_directories(stored, same):
    cfg = TrainConfig(data="x.h5", prior_path=True, rotation_aug_deg=0.0)
    full = {k: v for k, v in cfg.to_dict().items() if k not in ("prior_path", "rotation_aug_deg")}
    assert cfg.same_run({**full, **stored}) is same
