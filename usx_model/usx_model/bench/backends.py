"""``usx bench backends``: the network's dense stages in eager torch, ONNX Runtime and
torch.compile, in one run.

The completion cannot run whole in another runtime: farthest point sampling and the
k-nearest-neighbour searches are loops and trees outside torch. What another runtime can
take over are the dense stages between them, so each is timed alone on realistic inputs
(five vertebrae, the shipped network's sizes): the coarse stage (encoders, fusion,
posterior mean, decoder), RENet's four attention units (with the neighbour indices of
real-sized clouds) and the local folding head. Each backend reports its median, its
ratio to eager torch and the largest difference from eager torch's output. A backend
that is not installed (onnxruntime, onnx) or fails (torch.compile needs a C++ compiler)
is reported with its error, not skipped silently.
"""

from __future__ import annotations

import argparse
import io

import numpy as np
import torch
from torch import nn

from usx_model.bench.common import summarise, time_runs
from usx_model.network.config import compact_config
from usx_model.network.model import USXComplete
from usx_model.network.weights import load_weights
from usx_model.ops.knn import knn_points

NAME = "backends"
HELP = "dense network stages: eager torch vs ONNX Runtime vs torch.compile"
BACKENDS = ("eager", "onnxruntime", "compile")
#: Vertebrae per call, as in ``usx bench completion``.
BATCH = 5


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of every backend")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per stage and backend")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up runs")
    parser.add_argument("--weights", default=None, help="weights file (default: random init)")
    parser.add_argument(
        "--backends", default="eager,onnxruntime,compile", help=f"comma list of {BACKENDS}"
    )


class _Coarse(nn.Module):
    """Coarse stage at the posterior mean: (US, X-ray) -> coarse_raw."""

    def __init__(self, model: USXComplete) -> None:
        super().__init__()
        self.coarse = model.coarse

    def forward(self, us: torch.Tensor, xray: torch.Tensor) -> torch.Tensor:
        g_obs, q = self.coarse.encode(us, xray)
        return self.coarse.decode(g_obs, q.mu)


class _Unit(nn.Module):
    """One RENet attention unit with its ReLU, as RENet applies it."""

    def __init__(self, unit: nn.Module) -> None:
        super().__init__()
        self.unit = unit

    def forward(self, feat: torch.Tensor, knn_idx: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.unit(feat, knn_idx))


def _stages(model: USXComplete) -> dict[str, tuple[nn.Module, tuple[torch.Tensor, ...]]]:
    cfg = model.config
    g = torch.Generator().manual_seed(0)
    stages = {
        "coarse": (
            _Coarse(model),
            (
                torch.randn(BATCH, cfg.n_partial, 3, generator=g),
                torch.randn(BATCH, cfg.n_xray, 3, generator=g),
            ),
        )
    }
    n_points = (cfg.n_refine_in, *cfg.renet_points)
    widths = (3 + cfg.n_sources, cfg.renet_widths[1], cfg.renet_widths[2], cfg.renet_widths[3])
    for level, (n, c) in enumerate(zip(n_points, widths, strict=True)):
        xyz = torch.randn(BATCH, n, 3, generator=g)
        idx = knn_points(xyz, xyz, cfg.k).idx
        feat = torch.randn(BATCH, n, c, generator=g)
        stages[f"attention_unit_{level + 1}"] = (_Unit(model.renet.units[level]), (feat, idx))
    if model.folding is not None:
        stages["folding"] = (
            model.folding,
            (
                torch.randn(BATCH, cfg.n_selected, 3, generator=g),
                torch.randn(BATCH, cfg.n_selected, cfg.expand, generator=g),
            ),
        )
    return stages


def _onnxruntime(module: nn.Module, args: tuple[torch.Tensor, ...], threads: int):
    import onnxruntime as ort  # optional: not a dependency of usx

    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, dynamo=False, opset_version=17)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    session = ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])
    feed = {i.name: a.numpy() for i, a in zip(session.get_inputs(), args, strict=True)}
    return lambda: torch.from_numpy(session.run(None, feed)[0])


def _backend(name: str, module: nn.Module, args: tuple[torch.Tensor, ...], threads: int):
    if name == "eager":
        return lambda: module(*args)
    if name == "onnxruntime":
        return _onnxruntime(module, args, threads)
    compiled = torch.compile(module, dynamic=False)
    return lambda: compiled(*args)


def run(args: argparse.Namespace) -> dict:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or "eager" not in backends:
        raise ValueError(
            f"--backends: expected 'eager' and any of {BACKENDS}, got {args.backends!r}"
        )
    torch.set_num_threads(args.threads)
    if args.weights:
        model = load_weights(args.weights)
    else:
        torch.manual_seed(0)
        model = USXComplete(compact_config("full"))
    model.eval()
    report: dict = {
        "threads": args.threads,
        "vertebrae": BATCH,
        "weights": args.weights,
        "stages": {},
    }
    totals = dict.fromkeys(backends, 0.0)
    with torch.inference_mode():
        for stage, (module, inputs) in _stages(model).items():
            reference = module(*inputs)
            row = {}
            for name in backends:
                try:
                    fn = _backend(name, module, inputs, args.threads)
                    diff = float((fn() - reference).abs().max())
                    median = summarise(time_runs(fn, args.runs, args.warmup))["median_s"]
                except Exception as exc:  # report, never hide: a backend may be missing
                    row[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
                    totals[name] = float("nan")
                    continue
                row[name] = {"median_ms": round(median * 1e3, 3), "max_abs_diff": diff}
                totals[name] += median * 1e3
            for r in row.values():
                if "median_ms" in r and "median_ms" in row["eager"]:
                    r["ratio_to_eager"] = round(r["median_ms"] / row["eager"]["median_ms"], 3)
            report["stages"][stage] = row
    report["total_ms"] = {k: (round(v, 3) if np.isfinite(v) else None) for k, v in totals.items()}
    return report
