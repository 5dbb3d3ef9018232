from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest

from usx_model.evaluation.real import REAL_ROOT
from usx_model.sim.phantom.verse import load_verse_spine

ROOT = os.path.join(REAL_ROOT, "verse_sub-verse004")
MASK = os.path.join(ROOT, "sub-verse004_seg-vert_msk.nii.gz")
CTD = os.path.join(ROOT, "sub-verse004_seg-subreg_ctd.json")

pytestmark = pytest.mark.skipif(not os.path.isfile(MASK), reason="shared VerSe sample missing")


@pytest.fixture(scope="module")
def spine():
    return load_verse_spine(MASK, CTD)


def _json_centroids_lps():
    """Independent reference: nibabel's apply_affine on the JSON voxel coordinates."""
    img = nib.load(MASK)
    with open(CTD) as fh:
        data = json.load(fh)
    out = {}
    for e in data[1:]:
        ras = nib.affines.apply_affine(img.affine, [e["X"], e["Y"], e["Z"]])
        out[e["label"]] = ras * np.array([-1.0, -1.0, 1.0])
    return out


def test_levels_and_centroids(spine):
    assert spine.spine_id == "sub-verse004"
    assert spine.levels == [1, 2, 3, 4, 5]
    ref = _json_centroids_lps()
    for lv, m in spine.vertebrae.items():
        np.testing.assert_allclose(m.body_centroid_mm, ref[19 + lv], atol=1e-6)
        # The body centroid lies anterior (smaller y in LPS) of the whole vertebra's.
        assert m.body_centroid_mm[1] < m.centroid_mm[1] - 5
        assert np.linalg.norm(m.body_centroid_mm - m.centroid_mm) < 20
        assert not m.part.any()
    # L1 is the most superior.
    z = [spine.vertebrae[lv].centroid_mm[2] for lv in range(1, 6)]
    assert np.all(np.diff(z) < 0)


def test_meshes_are_closed_and_span_real_sizes(spine):
    for m in spine.vertebrae.values():
        ext = np.ptp(m.vertices_mm, axis=0)
        assert np.all(ext > 40) and np.all(ext < 120)
        # Closed and consistently oriented: each directed edge once, its reverse too.
        e = np.concatenate([m.faces[:, [0, 1]], m.faces[:, [1, 2]], m.faces[:, [2, 0]]])
        key = e[:, 0] * len(m.vertices_mm) + e[:, 1]
        rev = e[:, 1] * len(m.vertices_mm) + e[:, 0]
        assert len(np.unique(key)) == len(e)
        assert np.isin(rev, key).all()


def test_reoriented_axis_code_gives_the_same_centroids(tmp_path, spine):
    shape = nib.load(MASK).shape
    with open(CTD) as fh:
        data = json.load(fh)
    # Same points written in A,I,R order: the first axis flipped.
    flipped = [{"direction": ["A", "I", "R"]}] + [
        {**e, "X": shape[0] - 1 - e["X"]} for e in data[1:]
    ]
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps(flipped))
    other = load_verse_spine(MASK, str(path))
    for lv in spine.levels:
        np.testing.assert_allclose(
            other.vertebrae[lv].body_centroid_mm, spine.vertebrae[lv].body_centroid_mm, atol=1e-9
        )


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        ([{"direction": ["P", "I", "X"]}], "invalid axis code"),
        ([{"direction": ["P", "A", "R"]}], "invalid axis code"),
        ([{"direction": "PIR"}], "invalid axis code"),
        ([{"label": 20, "X": 1, "Y": 2, "Z": 3}], "invalid axis code"),
        ({"direction": ["P", "I", "R"]}, "expected a JSON list starting with an axis code"),
        ([{"direction": ["P", "I", "R"]}, {"label": 20, "X": 1}], r"expected centroid entries"),
    ],
)
def test_bad_centroid_files(tmp_path, payload, match):
    path = tmp_path / "ctd.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match=match):
        load_verse_spine(MASK, str(path))


def test_not_json(tmp_path):
    path = tmp_path / "ctd.json"
    path.write_text("{nope")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_verse_spine(MASK, str(path))


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="VerSe file not found"):
        load_verse_spine(str(tmp_path / "none.nii.gz"), CTD)
    with pytest.raises(FileNotFoundError, match="VerSe file not found"):
        load_verse_spine(MASK, str(tmp_path / "none.json"))


def test_volume_without_lumbar_labels(tmp_path):
    vol = np.zeros((8, 8, 8), np.uint8)
    vol[2:5, 2:5, 2:5] = 12  # a thoracic label only
    path = str(tmp_path / "t.nii.gz")
    nib.save(nib.Nifti1Image(vol, np.eye(4)), path)
    ctd = tmp_path / "c.json"
    ctd.write_text(json.dumps([{"direction": ["R", "A", "S"]}]))
    with pytest.raises(ValueError, match=r"no lumbar labels 20\.\.24"):
        load_verse_spine(path, str(ctd))
