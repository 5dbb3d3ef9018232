"""Training loop of the completion network: seeded, resumable, DDP-aware.

Run directory layout (``RUN_DIR``):
    ``config.json``        the TrainConfig of the run
    ``last.pt``            latest checkpoint (model, optimiser, epoch, RNG states, history)
    ``best.pt``            checkpoint with the best validation CD-L1 (mm)
    ``history.json``       per-epoch losses and validation metrics
    ``curves.png``         loss and metric curves
    ``model.pt`` (+.json)  the best model as a shippable weights file with provenance

Under ``torchrun --nproc_per_node K`` (``WORLD_SIZE`` > 1) the same code trains with
DistributedDataParallel: gloo on CPU, NCCL on CUDA; every rank trains on its shard of
each epoch, rank 0 validates, writes checkpoints and reports.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from usx_model.dataset.schema import read_attrs, read_samples
from usx_model.network.loss import completion_loss
from usx_model.network.model import USXComplete
from usx_model.network.weights import save_weights
from usx_model.ops.chamfer import chamfer_distance
from usx_model.ops.f1 import f_score
from usx_model.train.config import TrainConfig
from usx_model.train.data import PreparedSplit, prepare_split, random_rotations, rotate_batch
from usx_model.train.plots import plot_curves

CHECKPOINT_FORMAT = "usx-train-checkpoint-v1"


@dataclass
class _Dist:
    world: int
    rank: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def _setup_distributed(cfg: TrainConfig) -> _Dist:
    want_cuda = cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested but no CUDA device is available")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
        rank = dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", "0"))
    else:
        rank, local = 0, 0
    if want_cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return _Dist(world, rank, device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    # Third-party code may draw from numpy's global RNG; ours uses explicit Generators.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)


@torch.no_grad()
def validate(
    model: USXComplete, split: PreparedSplit, device: torch.device, batch_size: int
) -> dict[str, float]:
    """Posterior-mean predictions on a split: quality and health of the coarse stage.

    Returns:
        ``val_cd_p`` mean cd_p (normalised units), ``val_cd_l1_mm`` CD-L1 (mm),
        ``val_f1_1mm`` F1 at 1 mm, ``val_q_sigma`` mean posterior σ, and
        ``val_coarse_spread``: the std over the split's vertebrae of each coarse_raw
        output point, averaged over points (normalised units). A spread near 0 means the
        coarse decoder emits one template whatever it sees: the collapse that posterior
        noise (σ ≈ 1 at a high KL weight) drives it into.
    """
    model.eval()
    cd_p, cd_mm, f1, sigma = [], [], [], []
    coarse_sum = coarse_sq = None
    for start in range(0, len(split), batch_size):
        rows = slice(start, start + batch_size)
        batch = {k: v.to(device) for k, v in split.batch(rows).items()}
        gt = batch.pop("gt")
        out = model(batch)
        pred = out["fine"]
        scale = split.scale_mm[rows].to(device)
        cd = chamfer_distance(pred, gt).cd_p
        cd_p.append(cd.cpu())
        cd_mm.append((cd * scale).cpu())
        # 1 mm in each sample's normalised units
        for i in range(pred.shape[0]):
            f1.append(f_score(pred[i : i + 1], gt[i : i + 1], float(1.0 / scale[i])).f1.cpu())
        sigma.append(out["q_sigma"].mean(dim=1).cpu())
        coarse = out["coarse_raw"].double().cpu()
        part_sum, part_sq = coarse.sum(0), coarse.square().sum(0)
        coarse_sum = part_sum if coarse_sum is None else coarse_sum + part_sum
        coarse_sq = part_sq if coarse_sq is None else coarse_sq + part_sq
    n = len(split)
    var = (coarse_sq / n - (coarse_sum / n).square()).clamp_min(0.0).sum(-1)  # (n_coarse,)
    return {
        "val_cd_p": float(torch.cat(cd_p).mean()),
        "val_cd_l1_mm": float(torch.cat(cd_mm).mean()),
        "val_f1_1mm": float(torch.cat(f1).mean()),
        "val_q_sigma": float(torch.cat(sigma).mean()),
        "val_coarse_spread": float(var.sqrt().mean()),
    }


def _save_checkpoint(path: Path, model, optim, epoch: int, history: list, cfg: TrainConfig):
    state = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg.to_dict(),
        "epoch": epoch,
        "model": model.state_dict(),
        "optim": optim.state_dict(),
        "history": history,
        "rng_torch": torch.get_rng_state(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def _load_checkpoint(path: Path, model, optim) -> tuple[int, list]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a usx training checkpoint")
    model.load_state_dict(state["model"])
    optim.load_state_dict(state["optim"])
    torch.set_rng_state(state["rng_torch"])
    return int(state["epoch"]), list(state["history"])


def train(
    cfg: TrainConfig, run_dir: str | Path, resume: bool = True, progress: bool = True
) -> dict:
    """Train (or resume) a run; returns the final record of the history.

    Raises:
        ValueError: bad config/data, a run directory holding another config.
    """
    run_dir = Path(run_dir)
    env = _setup_distributed(cfg)
    try:
        return _train(cfg, run_dir, resume, progress, env)
    finally:
        if env.world > 1:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, progress: bool, env: _Dist) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed + env.rank)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "config.json"
    if cfg_path.exists() and resume:
        old = json.loads(cfg_path.read_text())
        if not cfg.same_run(old):
            raise ValueError(f"{run_dir} holds a run with another config; use a new --out")
    elif env.main:
        # written whole, then renamed: another rank's check above must never read a file
        # half written (torchrun: "Expecting value: line 1 column 1" from an empty one)
        tmp = cfg_path.with_name(cfg_path.name + ".tmp")
        tmp.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, cfg_path)

    net_cfg = cfg.network_config()
    schedule = cfg.loss_schedule()
    train_samples = read_samples(cfg.data, "train")
    val_samples = read_samples(cfg.data, "val")
    if cfg.max_train_samples:
        train_samples = train_samples.select(
            np.arange(min(cfg.max_train_samples, len(train_samples)))
        )
    if cfg.max_val_samples:
        val_samples = val_samples.select(np.arange(min(cfg.max_val_samples, len(val_samples))))
    train_split = prepare_split(train_samples, net_cfg, cfg.n_gt)
    val_split = prepare_split(val_samples, net_cfg, cfg.n_gt)

    model = USXComplete(net_cfg).to(env.device)
    optim = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    start_epoch, history = 0, []
    last = run_dir / "last.pt"
    if resume and last.exists():
        done, history = _load_checkpoint(last, model, optim)
        start_epoch = done + 1
    # Without the prior path the prior encoder gets no gradient: DDP must be told.
    net = (
        DistributedDataParallel(model, find_unused_parameters=not cfg.prior_path)
        if env.world > 1
        else model
    )

    gen = torch.Generator().manual_seed(cfg.seed)
    best = min((h["val_cd_l1_mm"] for h in history), default=float("inf"))
    for epoch in range(start_epoch, cfg.epochs):
        for group in optim.param_groups:
            group["lr"] = cfg.lr_at(epoch)
        # The same permutation on every rank (seeded by epoch); each rank takes its shard.
        perm = torch.randperm(len(train_split), generator=gen.manual_seed(cfg.seed * 1000 + epoch))
        shard = perm[env.rank :: env.world]
        n_batches = len(shard) // cfg.batch_size
        net.train()
        sums: dict[str, float] = {}
        t0 = time.perf_counter()
        bar = tqdm(
            range(n_batches),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not (progress and env.main),
            leave=False,
        )
        for b in bar:
            idx = shard[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            batch = train_split.batch(idx)
            if cfg.rotation_aug_deg > 0:
                batch = rotate_batch(batch, random_rotations(len(idx), cfg.rotation_aug_deg, gen))
            batch = {k: v.to(env.device) for k, v in batch.items()}
            # Without the prior path the network never sees the GT (the loss does).
            outputs = net(batch if cfg.prior_path else _without_gt(batch))
            loss, parts = completion_loss(outputs, batch, epoch, schedule)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            bar.set_postfix(loss=f"{parts['total']:.4f}", cd=f"{parts['cd_fine']:.4f}")
        record = {k: v / max(n_batches, 1) for k, v in sums.items()}
        record.update(epoch=epoch, lr=cfg.lr_at(epoch), train_s=time.perf_counter() - t0)
        if env.main:
            record.update(validate(model, val_split, env.device, cfg.batch_size))
            history.append(record)
            if record["val_cd_l1_mm"] < best:
                best = record["val_cd_l1_mm"]
                _save_checkpoint(run_dir / "best.pt", model, optim, epoch, history, cfg)
            _save_checkpoint(last, model, optim, epoch, history, cfg)
            (run_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
            plot_curves(history, run_dir / "curves.png")
            if progress:
                print(
                    f"epoch {epoch + 1}/{cfg.epochs}: loss {record.get('total', float('nan')):.4f} "
                    f"val CD-L1 {record['val_cd_l1_mm']:.3f} mm F1@1mm {record['val_f1_1mm']:.3f} "
                    f"({record['train_s']:.0f} s)",
                    flush=True,
                )
        if env.world > 1:
            dist.barrier()
    if env.main and history:
        _export_best(run_dir, cfg, net_cfg, history)
    return history[-1] if history else {}


def _without_gt(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k != "gt"}


def _git_commit() -> str:
    """The source tree's git commit (``+dirty`` with local changes), or ``unknown``."""
    import subprocess

    here = Path(__file__).parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty.strip() else "")


def export_run(run_dir: str | Path) -> Path:
    """Write ``RUN_DIR/model.pt`` (+ provenance) from the run's best checkpoint so far.

    For a run stopped before its last epoch; a finished run has exported already.

    Raises:
        ValueError: no checkpoint or history in ``run_dir``.
    """
    run_dir = Path(run_dir)
    try:
        cfg = TrainConfig(**json.loads((run_dir / "config.json").read_text()))
        history = json.loads((run_dir / "history.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{run_dir} is not a training run with a finished epoch: {exc}") from exc
    _export_best(run_dir, cfg, cfg.network_config(), history)
    return run_dir / "model.pt"


def _export_best(run_dir: Path, cfg: TrainConfig, net_cfg, history: list) -> None:
    """Write the best checkpoint's model as weights with provenance."""
    attrs = read_attrs(cfg.data)
    dataset = {
        "path": str(cfg.data),
        **{k: attrs.get(k) for k in ("seed", "n_spines", "usx_version", "options") if k in attrs},
        # a rebuilt dataset must match this to retrain these weights exactly
        "content_sha256": read_samples(cfg.data).content_sha256(),
    }
    src = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    best = min(history, key=lambda h: h["val_cd_l1_mm"])
    state = torch.load(src, map_location="cpu", weights_only=True)["model"]
    _export(cfg, net_cfg, history, dataset, state, "best", best, run_dir / "model.pt")


def _export(
    cfg: TrainConfig,
    net_cfg,
    history: list,
    dataset: dict,
    state: dict,
    kind: str,
    chosen: dict,
    out: Path,
) -> None:
    model = USXComplete(net_cfg)
    model.load_state_dict(state)
    save_weights(
        model,
        out,
        extra={
            "train_config": cfg.to_dict(),
            "dataset": dataset,
            "commit": _git_commit(),
            "weights": kind,
            "best_epoch": int(chosen["epoch"]),
            "val_metrics": {k: v for k, v in chosen.items() if k.startswith("val_")},
            "epochs_trained": len(history),
            "epochs_planned": cfg.epochs,
            "history": history,
        },
    )
