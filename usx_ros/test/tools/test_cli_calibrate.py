"""usx calibrate: a simulated scene as a rosbag2, then the estimators read it back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from usx_model.tracking.calibration import load_probe_calibration

pytestmark = pytest.mark.slow  # five simulated recordings, ~1 min

USX = Path(sys.executable).parent / "usx"


def _usx(args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``usx calibrate ARGS`` (whitespace-separated) in ``cwd``."""
    return subprocess.run(
        [str(USX), "calibrate", *args.split()], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_spatial_from_a_bag_recovers_the_truth(tmp_path):
    sim = _usx(
        "simulate --kind spatial --seed 5 --out s --poses 20 "
        "--error-mm 3 --error-deg 3 --spacing-error-pct 5",
        tmp_path,
    )
    assert sim.returncode == 0, sim.stderr
    assert (tmp_path / "s" / "bag" / "metadata.yaml").is_file()
    est = _usx(
        "spatial --bag s/bag --initial s/initial.yaml --out est.yaml --json est.json",
        tmp_path,
    )
    assert est.returncode == 0, est.stderr
    truth = json.loads((tmp_path / "s" / "truth.json").read_text())
    out = json.loads((tmp_path / "est.json").read_text())
    A, B = np.array(truth["T_flange_image"]), np.array(out["T_flange_image"])
    assert out["converged"] and np.linalg.norm(A[:3, 3] - B[:3, 3]) < 0.3
    assert np.degrees(Rotation.from_matrix(B[:3, :3] @ A[:3, :3].T).magnitude()) < 0.3
    np.testing.assert_allclose(out["pixel_spacing_mm"], truth["pixel_spacing_mm"], rtol=5e-3)
    # the written file is what the nodes read, and it says the same
    cal = load_probe_calibration(tmp_path / "est.yaml")
    np.testing.assert_allclose(cal.T_ee_image, B, atol=1e-9)
    # the start was off by what was asked
    init = load_probe_calibration(tmp_path / "s" / "initial.yaml")
    assert np.linalg.norm(init.T_ee_image[:3, 3] - A[:3, 3]) > 1.0


def test_degenerate_sweep_is_refused_and_writes_nothing(tmp_path):
    sim = _usx(
        "simulate --kind degenerate --seed 5 --out d --poses 14 --error-mm 3 --error-deg 3",
        tmp_path,
    )
    assert sim.returncode == 0, sim.stderr
    est = _usx(
        "spatial --bag d/bag --initial d/initial.yaml --out est.yaml --json est.json",
        tmp_path,
    )
    assert est.returncode == 1
    out = json.loads((tmp_path / "est.json").read_text())
    assert out["converged"] is False and any("not determined" in w for w in out["warnings"])
    assert not (tmp_path / "est.yaml").exists()


@pytest.mark.parametrize("offset_ms", [-63.0, 41.5])
def test_temporal_from_a_bag(tmp_path, offset_ms):
    sim = _usx(
        f"simulate --kind temporal --seed 6 --out t --heave-s 3 --offset-ms {offset_ms}",
        tmp_path,
    )
    assert sim.returncode == 0, sim.stderr
    est = _usx("temporal --bag t/bag --json t.json --out probe.yaml", tmp_path)
    assert est.returncode == 0, est.stderr
    out = json.loads((tmp_path / "t.json").read_text())
    assert out["offset_ms"] == pytest.approx(offset_ms, abs=2.0)
    # the nodes' calibration file now carries it
    cal = load_probe_calibration(tmp_path / "probe.yaml")
    assert cal.temporal_offset_ms == pytest.approx(out["offset_ms"], abs=1e-3)


def test_not_a_bag_is_one_line(tmp_path):
    est = _usx("temporal --bag nowhere --json t.json", tmp_path)
    assert est.returncode == 2
    lines = est.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a rosbag2 folder" in lines[0], est.stderr
