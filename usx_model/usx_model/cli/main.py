"""Entry point of the ``usx`` command: discovers subcommands and runs one.

Every subcommand registers itself with ``register(subparsers)`` and sets
``func(args) -> int`` as its handler. Errors a user can fix (bad paths, bad values)
are raised as ``ValueError``/``OSError`` and reported as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from importlib import metadata

from usx_model import __version__
from usx_model.cli import commands

ENTRY_POINT_GROUP = "usx.commands"


def _command_modules() -> list:
    mods = [
        importlib.import_module(f"{commands.__name__}.{info.name}")
        for info in pkgutil.iter_modules(commands.__path__)
        if not info.name.startswith("_")
    ]
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        mods.append(ep.load())
    return mods


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse parser whose usage errors are a single line (and exit code 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every discovered subcommand."""
    parser = _OneLineErrorParser(
        prog="usx",
        description="usx: robotic ultrasound + lateral X-ray lumbar spine completion.",
    )
    parser.add_argument("--version", action="version", version=f"usx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in sorted(_command_modules(), key=lambda m: m.__name__.rsplit(".", 1)[-1]):
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``usx`` with ``argv`` (defaults to ``sys.argv[1:]``); return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("usx: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:
        # One line, no traceback: these are errors the user can fix.
        print(f"usx {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
