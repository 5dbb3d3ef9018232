"""usx dataset build: determinism, splits by spine, the file contract, CLI errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from usx_model.base.parts import Part
from usx_model.dataset.builder import BuildOptions, assign_splits, build_dataset, spine_seed
from usx_model.dataset.schema import read_attrs, read_samples

SMALL = BuildOptions(n_partial=128, n_xray=64, n_gt=512, norm_points=64)


@pytest.fixture(scope="module")
def two_spines(tmp_path_factory):
    path = tmp_path_factory.mktemp("ds") / "d.h5"
    build_dataset(path, 2, seed=123, options=SMALL)
    return path


def test_contract_shapes_and_content(two_spines):
    s = read_samples(two_spines)
    assert s.us_partial.shape == (10, 128, 3) and s.xray.shape == (10, 64, 3)
    assert s.gt.shape == (10, 512, 3) and s.gt_part.shape == (10, 512)
    assert s.level.tolist() == [1, 2, 3, 4, 5] * 2
    assert set(np.unique(s.gt_part)) <= {int(p) for p in Part}
    assert (s.gt_part == Part.BODY).any(axis=1).all()
    # X-ray points are the lateral projection: one sagittal plane per vertebra.
    assert np.ptp(s.xray[:, :, 0], axis=1).max() < 1e-6
    # US sees the posterior side: the partial lies posterior of the body GT on average.
    body_y = [g[p == Part.BODY][:, 1].mean() for g, p in zip(s.gt, s.gt_part, strict=True)]
    assert (s.us_partial[:, :, 1].mean(axis=1) > np.array(body_y)).all()
    attrs = read_attrs(two_spines)
    assert attrs["seed"] == 123 and attrs["spine_seeds"] == [spine_seed(123, i) for i in range(2)]


def test_same_seed_same_arrays_any_worker_count(two_spines, tmp_path):
    again = tmp_path / "again.h5"
    build_dataset(again, 2, seed=123, options=SMALL, workers=2)
    a, b = read_samples(two_spines), read_samples(again)
    for key in vars(a):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def test_different_seeds_give_different_spines():
    assert spine_seed(1, 0) != spine_seed(2, 0) and spine_seed(1, 0) != spine_seed(1, 1)


@pytest.mark.parametrize(
    ("n", "split", "want"),
    [
        (10, None, ["train"] * 8 + ["val"] + ["test"]),
        (3, "test", ["test"] * 3),
        (1, None, ["train"]),
    ],
)
def test_splits_are_by_spine(n, split, want):
    assert assign_splits(n, BuildOptions(split=split)) == want


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_gt": 8}, "n_gt: expected >= 16"),
        ({"split": "holdout"}, "split: expected one of"),
        ({"fractions": (0.5, 0.5, 0.5)}, "summing to 1"),
        ({"residual_scale": (1.0, 0.5)}, "residual_scale: expected 0 <= low <= high"),
        ({"residuals": "/nonexistent/lib.npz"}, "residuals: no such library file"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BuildOptions(**kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--spines", "0", "--seed", "1", "--out", "x.h5"], "--spines: expected >= 1, got 0"),
        (["--spines", "1", "--seed", "1", "--out", "x.h5", "--n-gt", "4"], "n_gt: expected"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, args, message):
    usx = Path(sys.executable).parent / "usx"
    out = subprocess.run(
        [str(usx), "dataset", "build", "--quiet", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from usx_model.sim.phantom.residual import ResidualLibrary, library_sha256

    rng = np.random.default_rng(0)
    lib = ResidualLibrary(
        np.array(["a", "b"]),
        np.array([1, 3]),
        np.array([0, 400, 800]),
        rng.uniform(-2.0, 2.0, (800, 3)),
        rng.normal(0.0, 0.05, (800, 3)),
    )
    path = tmp_path_factory.mktemp("lib") / "lib.npz"
    lib.save(path)
    return str(path), library_sha256(path)


def test_residual_fields_move_the_vertebrae_the_views_are_made_of(two_spines, library, tmp_path):
    from dataclasses import replace

    path, digest = library
    moved = tmp_path / "moved.h5"
    build_dataset(
        moved, 2, seed=123, options=replace(SMALL, residuals=path, residuals_sha256=digest)
    )
    a, b = read_samples(two_spines), read_samples(moved)
    shift = np.linalg.norm(a.gt.mean(axis=1) - b.gt.mean(axis=1), axis=1)
    assert 0.05 < shift.mean() < 5.0  # moved, and not into another place
    assert not np.allclose(a.us_partial, b.us_partial)
    assert read_attrs(moved)["options"]["residuals_sha256"] == digest


def test_a_library_that_changed_is_refused(library, tmp_path):
    from dataclasses import replace

    path, _ = library
    with pytest.raises(ValueError, match="expected sha256 0000"):
        build_dataset(
            tmp_path / "x.h5",
            1,
            seed=1,
            options=replace(SMALL, residuals=path, residuals_sha256="0000"),
        )
