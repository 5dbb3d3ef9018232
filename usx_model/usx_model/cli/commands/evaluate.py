"""``usx evaluate``: complete test vertebrae with each method and report the paper's Table 1.

Simulated test set:   usx evaluate --data TEST.h5 --json OUT.json --report DIR
Real vertebrae:       usx evaluate --real FOLDER --json OUT.json --report DIR

Methods are the given weights files, each named after its network variant (full, us_only,
ef_only, lf_only); without --weights the shipped full model and US-only baseline are used.
Per vertebra and method: CD-L1 (mm), CD×1e4 (normalised), EMD (mm) and F1@1 mm for the
whole vertebra, arch and body; mean ± std (median), per level, and Wilcoxon signed-rank
tests of full against each other method (Shapiro-Wilk of the differences beside them).

--real: loose meshes are oriented to LPS (header axes, spinous process posterior,
mid-sagittal symmetry, ICP onto a phantom vertebra of the same level); VerSe volumes and
per-level meshes of one person in relation (<subject>_L1.ply .. _L5.ply, centroids 20-50 mm
apart) are put in a spine frame and simulated with their neighbours (--real-loose: every
mesh alone and re-oriented; --real-alone: every vertebra alone in its pose in the spine
frame, the neighbours' effect without the re-orientation); US partial and X-ray points
are simulated, GT is sampled from the real surface, and arch/body are the half-space
split (no part labels on real meshes).

--floor N (phantom --data only): also score an N-point area-uniform sample of each true
surface against the same GT, the figure a prediction without any shape error would get
(Chamfer and F1 compare finite samples); JSON key "floor", last row of the table.
With --floor-at-mean P[,P...] that sample comes instead from the same patients with the
named morphometry parameters at their mean given the rest: an oracle that knows every
shape parameter but those (for example the ones no view shows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from usx_model.network.us_consistency import US_SNAP_MM


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate completion networks on a test set or real vertebrae (Table 1)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", metavar="H5", help="dataset HDF5 (usx dataset build) to evaluate on")
    src.add_argument(
        "--real",
        metavar="DIR",
        help="folder of real meshes (PLY/STL/OBJ/OFF, mm), one-vertebra NIfTI masks"
        " and/or VerSe volumes",
    )
    p.add_argument(
        "--weights", metavar="FILE", help="main model weights (default: the shipped full model)"
    )
    p.add_argument(
        "--weights-baseline", metavar="FILE", help="US-only baseline weights (us_only variant)"
    )
    p.add_argument(
        "--weights-ef", metavar="FILE", help="early-fusion-only ablation weights (ef_only)"
    )
    p.add_argument(
        "--weights-lf", metavar="FILE", help="late-fusion-only ablation weights (lf_only)"
    )
    p.add_argument(
        "--split", choices=["train", "val", "test", "all"], default="test", help="--data split"
    )
    p.add_argument("--json", metavar="FILE", required=True, help="write the results JSON here")
    p.add_argument(
        "--report", metavar="DIR", required=True, help="folder for table.md, results.json, PNGs"
    )
    p.add_argument("--save-predictions", metavar="NPZ", help="write every prediction to this .npz")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="default: cuda if any")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N vertebrae")
    p.add_argument("--batch-size", type=int, default=16, help="vertebrae per forward pass")
    p.add_argument("--no-emd", action="store_true", help="skip EMD (values null)")
    p.add_argument(
        "--no-xray-snap",
        action="store_true",
        help="raw network output: skip the X-ray silhouette consistency step of complete()",
    )
    p.add_argument(
        "--us-snap-mm",
        type=float,
        default=US_SNAP_MM,
        help="move predicted points within this of the US points onto their surface "
        "(after the gate; 0 = off; default: the completion node's, %(default)s mm)",
    )
    p.add_argument(
        "--floor",
        type=int,
        metavar="N",
        help="--data from usx dataset build: also score an N-point sample of the true "
        "surface, what a perfect N-point prediction gets (JSON key 'floor')",
    )
    p.add_argument(
        "--floor-at-mean",
        metavar="P[,P...]",
        default="",
        help="with --floor: sample patients whose named morphometry parameters are at "
        "their mean given the rest (phantom.morphometry.PARAMETER_NAMES)",
    )
    p.add_argument("--seed", type=int, default=0, help="--real: simulation seed")
    p.add_argument(
        "--real-loose",
        action="store_true",
        help="--real: simulate every mesh alone, also meshes of one person in relation",
    )
    p.add_argument(
        "--real-alone",
        action="store_true",
        help="--real: simulate every vertebra alone but in its pose in the spine frame "
        "(VerSe volumes and meshes in relation keep their lordotic tilt)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars, no table print")
    p.set_defaults(func=_run)


def _weight_specs(args: argparse.Namespace) -> list:
    from usx_model.weights import shipped_weights

    specs = []
    if args.weights:
        specs.append((args.weights, None))
    elif not (args.weights_baseline or args.weights_ef or args.weights_lf):
        specs += [(shipped_weights("full"), None), (shipped_weights("us_only"), "us_only")]
    else:
        specs.append((shipped_weights("full"), None))
    if args.weights_baseline:
        specs.append((args.weights_baseline, "us_only"))
    for path, variant in ((args.weights_ef, "ef_only"), (args.weights_lf, "lf_only")):
        if path:
            specs.append((path, variant))
    for path, _ in specs:
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
    return specs


def _device(name: str | None) -> str:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return name or ("cuda" if torch.cuda.is_available() else "cpu")


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from usx_model.evaluation.methods import load_methods
    from usx_model.evaluation.pipeline import dataset_eval_set, evaluate, save_predictions
    from usx_model.evaluation.report import full_markdown, render_cases, write_reports

    if args.real_alone and (not args.real or args.real_loose):
        raise ValueError("--real-alone: expected with --real and without --real-loose")
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit: expected >= 1, got {args.limit}")
    if args.floor is not None and (args.real or args.floor < 1):
        raise ValueError(
            "--floor: expected N >= 1 with --data (a phantom dataset), "
            f"got {args.floor}" + (" with --real" if args.real else "")
        )
    at_mean = tuple(name for name in args.floor_at_mean.split(",") if name)
    if at_mean:
        from usx_model.sim.phantom.morphometry import check_parameter_names

        if args.floor is None:
            raise ValueError("--floor-at-mean: expected together with --floor N")
        check_parameter_names(at_mean, "--floor-at-mean")  # before the networks run
    device = _device(args.device)
    specs = _weight_specs(args)
    if args.real:
        from usx_model.evaluation.real import alone_in_place, find_real_cases, real_eval_set

        cases = find_real_cases(args.real, args.real_loose)
        if args.real_alone:
            cases = alone_in_place(cases)
        evalset = real_eval_set(cases, seed=args.seed)
        if args.limit is not None:
            evalset = evalset.head(args.limit)
    else:
        evalset = dataset_eval_set(args.data, args.split, args.limit)
        if args.floor is not None:
            from usx_model.evaluation.floor import spine_seeds

            spine_seeds(args.data)  # fail before the networks run, not after
    methods = load_methods(specs, device)
    bars: dict = {}

    def progress(stage: str, done: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=len(evalset), desc=stage, unit="vert", leave=False)
        bar.update(done - bar.n)

    t0 = time.perf_counter()
    ev = evaluate(
        methods,
        evalset,
        device,
        args.batch_size,
        None if args.no_emd else 1024,
        None if args.quiet else progress,
        xray_snap=not args.no_xray_snap,
        us_snap_mm=args.us_snap_mm,
    )
    floor = None
    if args.floor is not None:
        from usx_model.evaluation.floor import floor_metrics, summarise_floor

        rows = floor_metrics(
            evalset,
            args.floor,
            None if args.no_emd else 1024,
            None if args.quiet else (lambda n: progress("floor", n)),
            at_mean,
        )
        floor = summarise_floor(rows, args.floor, at_mean)
    for bar in bars.values():
        bar.close()
    results = ev.results
    if floor is not None:
        results["floor"] = floor
    results["total_s"] = round(time.perf_counter() - t0, 3)
    if args.real:
        results["real"] = str(args.real)
        for row, info in zip(results["per_vertebra"], results.pop("real_cases"), strict=True):
            row.update({k: v for k, v in info.items() if k not in row})
    if args.save_predictions:
        results["predictions"] = str(save_predictions(args.save_predictions, evalset, ev))
    write_reports(results, args.report)
    render_cases(args.report, evalset, ev)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    if not args.quiet:
        print(full_markdown(results))
        print(f"wrote {out} and {args.report}/ (table.md, results.json, PNGs)", file=sys.stderr)
    return 0
