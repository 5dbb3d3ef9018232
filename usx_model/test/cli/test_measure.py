"""``usx measure``: every stage harness is reachable from the CLI and prints its JSON."""

from __future__ import annotations

import json

import pytest

from usx_model.cli.main import main


def test_registration_prints_and_writes_the_same_json(tmp_path, capsys):
    out = tmp_path / "icp.json"
    rc = main(["measure", "registration", "--seeds", "7000", "--trials", "1", "--json", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["trials"] == 1
    # 10 mm / 10 deg starts on a phantom converge to well under a millimetre
    assert printed["trans_err_mm"]["max"] < 1.0
    assert printed["converged_rate"] == 1.0


@pytest.mark.parametrize("stage", ["levels", "registration"])
def test_each_stage_has_help(stage, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["measure", stage, "--help"])
    assert exc.value.code == 0
    assert "--seeds" in capsys.readouterr().out


def test_unknown_stage_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["measure", "compounding"])
    assert exc.value.code == 2
    assert "invalid choice: 'compounding'" in capsys.readouterr().err
