"""The dataset HDF5 contract: round trip, split selection, and what it refuses."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from usx_model.dataset.schema import read_attrs, read_samples, write_samples


def test_round_trip_and_split_selection(tmp_path, make_toy_samples):
    s = make_toy_samples(n_spines=4)
    write_samples(tmp_path / "d.h5", s, {"seed": 3, "builder": {"n_partial": 128}})
    back = read_samples(tmp_path / "d.h5")
    np.testing.assert_allclose(back.gt, s.gt, atol=1e-4)  # stored as float32
    assert back.spine_id.tolist() == s.spine_id.tolist()
    test = read_samples(tmp_path / "d.h5", "test")
    assert len(test) == 5 and set(test.split) == {"test"}
    np.testing.assert_array_equal(test.level, [1, 2, 3, 4, 5])
    assert read_attrs(tmp_path / "d.h5") == {"seed": 3, "builder": {"n_partial": 128}}
    with h5py.File(tmp_path / "d.h5") as f:
        assert f["gt_part"].dtype == np.uint8 and f["us_partial"].shape == s.us_partial.shape


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"split": lambda a: np.where(np.arange(len(a)) == 0, "val", a)}, "appears in splits"),
        ({"level": lambda a: a + 1}, r"expected values 1..5, got \[6\]"),
        ({"split": lambda a: np.full_like(a, "holdout")}, "expected values in"),
        ({"gt": lambda a: a[:, :, :2]}, r"gt: expected \(30, N, 3\)"),
        ({"gt_part": lambda a: a[:, :10]}, "gt_part: expected"),
        ({"xray": lambda a: np.where(a == a.max(), np.nan, a)}, "xray: contains NaN"),
    ],
)
def test_write_refuses_inconsistent_samples(tmp_path, change, message, make_toy_samples):
    s = make_toy_samples()
    ((key, fn),) = change.items()
    bad = dataclasses.replace(s, **{key: fn(getattr(s, key))})
    with pytest.raises(ValueError, match=message):
        write_samples(tmp_path / "d.h5", bad, {})
    assert not (tmp_path / "d.h5").exists()


def test_read_errors(tmp_path, make_toy_samples):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_samples(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5"):
        read_samples(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="not a usx dataset: missing"):
        read_samples(tmp_path / "other.h5")
    write_samples(tmp_path / "d.h5", make_toy_samples(), {})
    with pytest.raises(ValueError, match="split: expected one of"):
        read_samples(tmp_path / "d.h5", "holdout")


def test_content_digest_follows_the_values_not_the_file(tmp_path, make_toy_samples):
    s = make_toy_samples(n_spines=3)
    write_samples(tmp_path / "a.h5", s, {"seed": 1})
    write_samples(tmp_path / "b.h5", s, {"seed": 1})
    a, b = read_samples(tmp_path / "a.h5"), read_samples(tmp_path / "b.h5")
    assert a.content_sha256() == b.content_sha256()
    assert len(a.content_sha256()) == 64
    moved = dataclasses.replace(b, gt=b.gt.copy())
    moved.gt[4, 7, 1] += 0.01  # one coordinate of one point, 10 micrometres
    assert moved.content_sha256() != a.content_sha256()
    relabelled = dataclasses.replace(b, level=b.level[::-1].copy())
    assert relabelled.content_sha256() != a.content_sha256()
    renamed = dataclasses.replace(b, spine_id=np.where(b.spine_id == "toy-0", "toy-9", b.spine_id))
    assert renamed.content_sha256() != a.content_sha256()
