"""``usx train --config FILE --out RUN_DIR``: train the completion network.

Resumes from ``RUN_DIR/last.pt`` when it exists (``--no-resume`` refuses instead).
Runs unchanged under ``torchrun --nproc_per_node K $(which usx) train ...``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the completion network from a dataset (resumable, DDP-ready)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="training config (YAML or JSON)")
    p.add_argument("--out", required=True, help="run directory (checkpoints, curves, model.pt)")
    p.add_argument(
        "--variant",
        choices=["full", "us_only", "ef_only", "lf_only"],
        default=None,
        help="override the config's network variant",
    )
    p.add_argument("--epochs", type=int, default=None, help="override the number of epochs")
    p.add_argument("--no-resume", action="store_true", help="fail if RUN_DIR has a checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--export",
        action="store_true",
        help="only write RUN_DIR/model.pt from the best checkpoint so far",
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from usx_model.train.config import load_train_config
    from usx_model.train.loop import train

    if args.export:
        from usx_model.train.loop import export_run

        print(export_run(args.out))
        return 0
    cfg = load_train_config(args.config, variant=args.variant, epochs=args.epochs)
    out = Path(args.out)
    if args.no_resume and (out / "last.pt").exists():
        raise ValueError(f"{out} already holds a checkpoint (drop --no-resume to continue it)")
    train(cfg, out, resume=not args.no_resume, progress=not args.quiet)
    return 0
