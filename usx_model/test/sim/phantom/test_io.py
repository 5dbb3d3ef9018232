from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import open3d as o3d
import pytest

from usx_model.evaluation.real import REAL_ROOT
from usx_model.sim.phantom.io import read_ply, read_spine, voxelise_spine, write_ply, write_spine
from usx_model.sim.phantom.spine import generate_spine

REAL_PLY = os.path.join(REAL_ROOT, "verse19_L1", "sub-verse013_segment_20.ply")


@pytest.fixture(scope="module")
def spine():
    return generate_spine(21, spacing_mm=1.2)


@pytest.fixture(scope="module")
def written(spine, tmp_path_factory):
    return write_spine(spine, str(tmp_path_factory.mktemp("spines")), label_spacing_mm=1.5)


def test_ply_round_trip_keeps_geometry_faces_and_parts(tmp_path):
    rng = np.random.default_rng(0)
    v = rng.normal(size=(50, 3)) * 30
    f = rng.integers(0, 50, size=(80, 3))
    part = rng.integers(0, 8, size=50).astype(np.uint8)
    path = str(tmp_path / "m.ply")
    write_ply(path, v, f, part)
    v2, f2, p2 = read_ply(path)
    np.testing.assert_allclose(v2, v, atol=1e-4)  # float32 storage
    np.testing.assert_array_equal(f2, f)
    np.testing.assert_array_equal(p2, part)
    with open(path, "rb") as fh:
        head = fh.read(400)
    assert b"binary_little_endian" in head and b"property uchar part" in head


def test_written_ply_is_readable_by_open3d(tmp_path, spine):
    m = spine.vertebrae[2]
    path = str(tmp_path / "L2.ply")
    write_ply(path, m.vertices_mm, m.faces, m.part)
    om = o3d.io.read_triangle_mesh(path)
    np.testing.assert_allclose(np.asarray(om.vertices), m.vertices_mm, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(om.triangles), m.faces)


@pytest.mark.skipif(not os.path.isfile(REAL_PLY), reason="shared real data not present")
def test_reader_matches_open3d_on_a_foreign_ply_without_parts():
    v, f, p = read_ply(REAL_PLY)
    om = o3d.io.read_triangle_mesh(REAL_PLY)
    np.testing.assert_allclose(v, np.asarray(om.vertices), atol=1e-6)
    np.testing.assert_array_equal(f, np.asarray(om.triangles))
    assert p.dtype == np.uint8 and not p.any()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((4, 2)), np.zeros((1, 3), int), np.zeros(4)), r"expected \(V, 3\) vertices"),
        ((np.zeros((4, 3)), np.zeros((1, 4), int), np.zeros(4)), r"expected \(F, 3\) triangle"),
        ((np.zeros((4, 3)), np.zeros((1, 3), int), np.zeros(3)), r"expected \(4,\) part codes"),
        ((np.zeros((4, 3)), np.full((1, 3), 4), np.zeros(4)), r"face indices must lie in"),
    ],
)
def test_write_ply_bad_input(tmp_path, args, match):
    with pytest.raises(ValueError, match=match):
        write_ply(str(tmp_path / "x.ply"), *args)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"solid x\n", "is not a PLY file"),
        (b"ply\nformat ascii 1.0\nend_header\n", "expected binary_little_endian"),
        (b"ply\nformat binary_little_endian 1.0\n", "no end_header"),
    ],
)
def test_read_ply_bad_input(tmp_path, content, match):
    path = tmp_path / "bad.ply"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_ply(str(path))


def test_spine_folder_round_trip(spine, written):
    assert os.path.basename(written) == spine.spine_id
    assert sorted(os.listdir(written)) == [
        "L1.ply", "L2.ply", "L3.ply", "L4.ply", "L5.ply", "labels.nii.gz", "spine.json",
    ]  # fmt: skip
    back = read_spine(written)
    assert back.params == json.loads(json.dumps(spine.params))
    assert back.frames == spine.frames
    for lv, m in spine.vertebrae.items():
        np.testing.assert_allclose(back.vertebrae[lv].vertices_mm, m.vertices_mm, atol=1e-4)
        np.testing.assert_array_equal(back.vertebrae[lv].part, m.part)
        np.testing.assert_allclose(back.vertebrae[lv].centroid_mm, m.centroid_mm)


def test_label_volume_values_and_affine_map_back_to_centroids(spine, written):
    img = nib.load(os.path.join(written, "labels.nii.gz"))
    labels = np.asarray(img.dataobj)
    assert set(np.unique(labels)) == {0, 20, 21, 22, 23, 24}
    assert nib.aff2axcodes(img.affine) == ("L", "P", "S")
    for lv, m in spine.vertebrae.items():
        ijk = np.argwhere(labels == 19 + lv).mean(axis=0)
        ras = nib.affines.apply_affine(img.affine, ijk)
        lps = ras * np.array([-1.0, -1.0, 1.0])
        np.testing.assert_allclose(lps, m.centroid_mm, atol=1.0)


def test_voxel_volume_matches_mesh_volume(spine, written):
    labels = np.asarray(nib.load(os.path.join(written, "labels.nii.gz")).dataobj)
    m = spine.vertebrae[3]
    v = m.vertices_mm[m.faces]
    volume = np.einsum("ij,ij->i", v[:, 0], np.cross(v[:, 1], v[:, 2])).sum() / 6.0
    assert np.count_nonzero(labels == 22) * 1.5**3 == pytest.approx(volume, rel=0.08)


def test_read_spine_without_metadata(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no spine\.json in"):
        read_spine(str(tmp_path))


def test_voxelise_bad_spacing(spine):
    with pytest.raises(ValueError, match="expected spacing_mm > 0"):
        voxelise_spine(spine, spacing_mm=0)
