"""``usx dataset build``: phantom spines -> simulated US/X-ray views -> one HDF5 file."""

from __future__ import annotations

import argparse
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="build completion datasets from phantom spines")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True
    b = sub.add_parser(
        "build",
        help="generate spines, simulate US partials and X-ray points, write HDF5",
        description=__doc__,
    )
    b.add_argument("--spines", type=int, required=True, help="number of spines (5 samples each)")
    b.add_argument("--seed", type=int, required=True, help="dataset seed (spine seeds derive)")
    b.add_argument("--out", required=True, help="output .h5 file")
    b.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes")
    b.add_argument(
        "--split",
        choices=["train", "val", "test"],
        default=None,
        help="put every spine in this split (default: 80/10/10 by spine)",
    )
    b.add_argument("--n-partial", type=int, default=1024, help="US points per sample")
    b.add_argument("--n-xray", type=int, default=512, help="X-ray points per sample")
    b.add_argument("--n-gt", type=int, default=8192, help="GT surface points per sample")
    b.add_argument(
        "--deform-mm",
        type=float,
        default=0.0,
        help="RMS amplitude of a smooth random deformation of every vertebra (0..5 mm; "
        "0: the phantom as generated)",
    )
    b.add_argument(
        "--deform-length-mm",
        type=float,
        default=12.0,
        help="length scale of that deformation (mm)",
    )
    add_residual_arguments(b, parts=True)
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.set_defaults(func=_build)


def add_residual_arguments(p: argparse.ArgumentParser, parts: bool) -> None:
    """``--residuals LIB --residual-scale LO HI`` (and ``--residual-parts``): residual
    shape fields on the phantom (``sim.phantom.residual``); also ``usx phantom realism``'s."""
    p.add_argument(
        "--residuals",
        default=None,
        metavar="LIB",
        help="move every vertebra by a random residual field of LIB (usx phantom residuals)",
    )
    p.add_argument(
        "--residual-scale",
        type=float,
        nargs=2,
        default=(0.5, 1.0),
        metavar=("LO", "HI"),
        help="each field scaled by a factor uniform in [LO, HI] (default 0.5 1.0)",
    )
    if parts:
        p.add_argument(
            "--residual-parts",
            choices=["all", "arch"],
            default="all",
            help="what the fields move: the whole vertebra, or the posterior elements only",
        )


def _build(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from usx_model.dataset.builder import BuildOptions, build_dataset
    from usx_model.sim.phantom.residual import library_sha256

    options = BuildOptions(
        n_partial=args.n_partial,
        n_xray=args.n_xray,
        n_gt=args.n_gt,
        split=args.split,
        deform_mm=args.deform_mm,
        deform_length_mm=args.deform_length_mm,
        residuals=args.residuals,
        residuals_sha256=library_sha256(args.residuals) if args.residuals else None,
        residual_scale=tuple(args.residual_scale),
        residual_parts=args.residual_parts,
    )
    if args.spines < 1:
        raise ValueError(f"--spines: expected >= 1, got {args.spines}")
    with tqdm(total=args.spines, unit="spine", disable=args.quiet) as bar:
        samples = build_dataset(
            args.out,
            args.spines,
            args.seed,
            options,
            workers=args.workers,
            progress=lambda done: bar.update(done - bar.n),
        )
    splits = {s: int((samples.split == s).sum()) for s in ("train", "val", "test")}
    print(f"wrote {len(samples)} vertebrae of {args.spines} spines to {args.out}: {splits}")
    return 0
