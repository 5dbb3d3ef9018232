"""``usx phantom``: generate procedural spines and measure their realism.

- ``usx phantom generate --seed S --count N --out DIR``: spines of seeds S..S+N-1,
  written as ``DIR/phantom-sNNNNNN/`` (see ``usx_model.sim.phantom.io``).
- ``usx phantom realism [--n 200] [--control K] [--deform-mm A] [--json OUT]``: best-of-N
  Chamfer-L1 of the phantom against each real vertebra (and against K unseen phantom
  vertebrae per level: the same figure for a shape the phantom can make), as JSON.
- ``usx phantom residuals --out LIB.npz [--n 100] [--json OUT]``: fit one residual shape
  field per real validation vertebra (``evaluation.residuals``), the library that
  ``usx dataset build --residuals`` and ``realism --residuals`` apply to the phantom.
- ``usx phantom preview --seed S --out PNG``: three orthographic views of the meshes,
  with the simulated US partials (blue) and X-ray points (green) on top.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from usx_model.cli.commands.dataset import add_residual_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("phantom", help="procedural lumbar-spine phantom")
    sub = p.add_subparsers(dest="phantom_command", metavar="ACTION")
    sub.required = True

    g = sub.add_parser("generate", help="write phantom spines (PLY + spine.json + labels.nii.gz)")
    g.add_argument("--seed", type=int, default=0, help="seed of the first spine (default 0)")
    g.add_argument("--count", type=int, default=1, help="number of spines (default 1)")
    g.add_argument("--out", required=True, help="output folder")
    g.add_argument("--spacing-mm", type=float, default=0.9, help="mesh grid spacing")
    g.add_argument("--label-spacing-mm", type=float, default=1.0, help="label volume voxel size")
    g.add_argument("--max-cobb-deg", type=float, default=15.0, help="largest scoliosis angle")
    g.add_argument("--json", action="store_true", help="print the written folders as JSON")
    g.set_defaults(func=_generate)

    r = sub.add_parser("realism", help="best-of-N Chamfer of the phantom to real vertebrae")
    r.add_argument("--n", type=int, default=200, help="generated vertebrae per level")
    r.add_argument("--first-seed", type=int, default=0, help="seed of the first generated spine")
    r.add_argument("--data", default=None, help="real_vertebrae folder (default: shared data)")
    r.add_argument(
        "--control",
        type=int,
        default=0,
        metavar="K",
        help="also score K unseen phantom vertebrae per level against the same pool",
    )
    r.add_argument(
        "--deform-mm", type=float, default=0.0, help="deform the pool (as dataset build does)"
    )
    r.add_argument("--deform-length-mm", type=float, default=12.0, help="its length scale")
    r.add_argument(
        "--folder", default=None, help="score this folder's meshes (loose) instead of --data's"
    )
    add_residual_arguments(r, parts=False)
    r.add_argument("--json", default=None, metavar="OUT", help="also write the JSON here")
    r.set_defaults(func=_realism)

    f = sub.add_parser("residuals", help="fit residual shape fields to real vertebrae")
    f.add_argument("--out", required=True, help="output library (.npz)")
    f.add_argument("--n", type=int, default=100, help="phantom vertebrae per level to fit from")
    f.add_argument("--first-seed", type=int, default=0, help="seed of the first phantom spine")
    f.add_argument("--data", default=None, help="real_vertebrae folder (default: shared data)")
    f.add_argument(
        "--exclude",
        default="",
        metavar="NAMES",
        help="comma-separated validation vertebrae not to fit (kept for model selection)",
    )
    f.add_argument("--json", default=None, metavar="OUT", help="also write the report here")
    f.set_defaults(func=_residuals)

    v = sub.add_parser("preview", help="PNG of one phantom spine's meshes, parts coloured")
    v.add_argument("--seed", type=int, default=0, help="spine seed (default 0)")
    v.add_argument("--out", required=True, help="output PNG file")
    v.add_argument("--spacing-mm", type=float, default=0.9, help="mesh grid spacing")
    v.set_defaults(func=_preview)


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from usx_model.sim.phantom.io import write_spine
    from usx_model.sim.phantom.spine import generate_spine

    if args.count < 1:
        raise ValueError(f"--count must be >= 1, got {args.count}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    os.makedirs(args.out, exist_ok=True)
    written = []
    seeds = range(args.seed, args.seed + args.count)
    for seed in tqdm(seeds, desc="spines", disable=not sys.stderr.isatty()):
        spine = generate_spine(seed, spacing_mm=args.spacing_mm, max_cobb_deg=args.max_cobb_deg)
        written.append(write_spine(spine, args.out, label_spacing_mm=args.label_spacing_mm))
    if args.json:
        print(json.dumps({"spines": written}, indent=2))
    else:
        for folder in written:
            print(folder)
    return 0


def _realism(args: argparse.Namespace) -> int:
    from usx_model.evaluation.real import REAL_ROOT
    from usx_model.evaluation.realism import realism_report

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.control < 0:
        raise ValueError(f"--control must be >= 0, got {args.control}")
    if not 0.0 <= args.deform_mm <= 5.0:
        raise ValueError(f"--deform-mm must be 0..5 mm, got {args.deform_mm}")
    if args.residuals and not os.path.isfile(args.residuals):
        raise FileNotFoundError(f"residual library not found: {args.residuals}")
    root = args.data or REAL_ROOT
    if not args.folder and not os.path.isdir(root):
        raise FileNotFoundError(f"real vertebrae folder not found: {root}")
    residuals = None
    if args.residuals:
        from usx_model.sim.phantom.residual import ResidualLibrary

        residuals = ResidualLibrary.load(args.residuals)
    report = realism_report(
        n=args.n,
        first_seed=args.first_seed,
        root=root,
        control=args.control,
        deform_mm=args.deform_mm,
        deform_length_mm=args.deform_length_mm,
        folder=args.folder,
        residuals=residuals,
        residual_scale=tuple(args.residual_scale),
    )
    _print_json(report, args.json)
    return 0


def _print_json(report: dict, path: str | None) -> None:
    """Print ``report`` as JSON, and write it to ``path`` too when given."""
    text = json.dumps(report, indent=2)
    print(text)
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")


def _residuals(args: argparse.Namespace) -> int:
    from usx_model.evaluation.real import REAL_ROOT
    from usx_model.evaluation.residuals import build_library, calibration_vertebrae, without
    from usx_model.sim.phantom.residual import library_sha256

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if not args.out.endswith(".npz"):
        raise ValueError(f"--out must name a .npz file, got {args.out}")
    root = args.data or REAL_ROOT
    if not os.path.isdir(root):
        raise FileNotFoundError(f"real vertebrae folder not found: {root}")
    exclude = {n for n in args.exclude.split(",") if n}
    reals = without(calibration_vertebrae(root), exclude)
    library, report = build_library(reals, n=args.n, first_seed=args.first_seed)
    library.save(args.out)
    report.update(excluded=sorted(exclude), library=args.out, sha256=library_sha256(args.out))
    _print_json(report, args.json)
    return 0


def _preview(args: argparse.Namespace) -> int:
    from usx_model.sim.phantom.preview import render_spine_preview
    from usx_model.sim.phantom.spine import generate_spine

    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if not args.out.lower().endswith(".png"):
        raise ValueError(f"--out must name a .png file, got {args.out}")
    from usx_model.sim.us_partial import simulate_us_partials
    from usx_model.sim.xray import xray_points_25d

    spine = generate_spine(args.seed, spacing_mm=args.spacing_mm)
    us = np.concatenate([p.points_mm for p in simulate_us_partials(spine, seed=args.seed).values()])
    xray = np.concatenate(list(xray_points_25d(spine).values()))
    render_spine_preview(spine, args.out, us_points_mm=us, xray_points_mm=xray)
    print(args.out)
    return 0
