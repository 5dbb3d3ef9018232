"""usx pipeline: bad VerSe input ends with one clear line and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

USX = Path(sys.executable).parent / "usx"


def _volume(tmp_path: Path, label: int) -> str:
    vol = np.zeros((8, 8, 8), np.uint8)
    vol[2:5, 2:5, 2:5] = label
    path = tmp_path / f"v{label}.nii.gz"
    nib.save(nib.Nifti1Image(vol, np.eye(4)), str(path))
    return str(path)


def _ctd(tmp_path: Path, direction) -> str:
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps([{"direction": direction}, {"label": 20, "X": 3, "Y": 3, "Z": 3}]))
    return str(path)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: (str(t / "missing.nii.gz"), _ctd(t, ["R", "A", "S"])), "VerSe file not found"),
        (lambda t: (_volume(t, 12), _ctd(t, ["R", "A", "S"])), "no lumbar labels 20..24"),
        (lambda t: (_volume(t, 20), _ctd(t, ["P", "I", "X"])), "invalid axis code"),
    ],
)
def test_bad_verse_input_is_one_line(tmp_path, make, message):
    mask, ctd = make(tmp_path)
    _assert_one_line_error(tmp_path, message, "--verse", mask, ctd)


def test_meshes_that_are_no_spine_are_one_line(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "notes.txt").write_text("no meshes here")
    _assert_one_line_error(tmp_path, "--meshes: no mesh (*.ply", "--meshes", str(tmp_path / "m"))


def _assert_one_line_error(tmp_path: Path, message: str, *args: str) -> None:
    """``usx pipeline ARGS --json ...`` exits 2 with ``message`` on one stderr line."""
    out = subprocess.run(
        [str(USX), "pipeline", *args, "--json", str(tmp_path / "o.json")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--contact-loss-frac", "0.95"], "contact_loss_frac must lie in [0, 0.9]"),
        (["--breathing-mm", "-1"], "breathing_mm must be >= 0"),
        (["--breathing-hz", "5"], "breathing_hz must lie in [0.05, 2]"),
        (["--xray-shift-mm", "nan"], "xray_shift_mm must be finite"),
    ],
)
def test_bad_condition_is_one_line(tmp_path, flags, message):
    _assert_one_line_error(tmp_path, message, "--phantom-seed", "1", *flags)
