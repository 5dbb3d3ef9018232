"""The `usx` entry point as a user meets it: from any directory, nothing sourced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

USX = Path(sys.executable).parent / "usx"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("AMENT_PREFIX_PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "CMAKE_PREFIX_PATH")
    }
    return subprocess.run(
        [str(USX), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_help_lists_subcommands(tmp_path):
    out = _run("--help", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "bench" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("bench", "no-such-benchmark"), "invalid choice: 'no-such-benchmark'"),
        ((), "required: COMMAND"),
    ],
)
def test_usage_errors_are_one_line(tmp_path, args, message):
    out = _run(*args, cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert message in lines[0]
