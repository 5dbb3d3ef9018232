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


def test_uncertainty_fits_writes_and_reuses_the_error_scale(toy_dataset, tmp_path, capsys):
    from usx_model.completion.error_scale import load_error_scale

    fitted = tmp_path / "scale.json"
    args = ["measure", "uncertainty", "--data", str(toy_dataset), "--limit", "3"]
    assert main([*args, "--samples", "1", "--fit", str(fitted)]) == 0
    first = json.loads(capsys.readouterr().out)
    scale = load_error_scale(fitted)
    assert scale.provenance["fitted_on"] == {"phantom": 3}
    assert scale.provenance["samples"] == 1 and "--fit" in scale.provenance["command"]
    assert first["error_scale"]["coef"] == list(scale.coef)
    assert set(first["phantom"]["coverage_sigma"]) == {"0.5", "0.68", "0.9", "0.95"}
    # the coefficients read back give the same published sigma, so the same figures
    assert main([*args, "--samples", "1", "--error-scale", str(fitted)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["phantom"]["mean_sigma_mm"] == pytest.approx(first["phantom"]["mean_sigma_mm"])


def test_uncertainty_names_a_bad_error_scale_file(toy_dataset, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(SystemExit, match=f"--error-scale: {bad}"):
        main(
            [
                "measure",
                "uncertainty",
                "--data",
                str(toy_dataset),
                "--limit",
                "1",
                "--error-scale",
                str(bad),
            ]
        )
