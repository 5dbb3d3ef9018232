"""``usx bench NAME [--json]``: run one benchmark and print its figures as JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
from importlib import metadata

from usx_model import bench
from usx_model.bench.common import machine_info

ENTRY_POINT_GROUP = "usx.bench"


def _benchmarks() -> dict:
    found = {}
    for info in pkgutil.iter_modules(bench.__path__):
        if info.name in ("common",) or info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{bench.__name__}.{info.name}")
        found[mod.NAME] = mod
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        mod = ep.load()
        found[mod.NAME] = mod
    return found


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="run a benchmark and print JSON figures")
    sub = p.add_subparsers(dest="bench", metavar="BENCHMARK")
    sub.required = True
    for name, mod in sorted(_benchmarks().items()):
        bp = sub.add_parser(name, help=mod.HELP)
        bp.add_argument("--json", action="store_true", help="print JSON only (default: JSON too)")
        bp.add_argument("--out", default=None, help="also write the JSON to this file")
        mod.add_arguments(bp)
        bp.set_defaults(func=_make_runner(mod))


def _make_runner(mod):
    def _run(args: argparse.Namespace) -> int:
        result = {"benchmark": mod.NAME, **mod.run(args), "machine": machine_info()}
        text = json.dumps(result, indent=2, sort_keys=True)
        print(text)
        if args.out:
            with open(args.out, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        return 0

    return _run
