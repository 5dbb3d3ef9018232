"""``usx evaluate --real``: levels from names, orientation to LPS, the real-data run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from usx_model.cli.main import main
from usx_model.evaluation.real import (
    REAL_ROOT,
    alone_in_place,
    find_real_cases,
    in_relation,
    level_from_name,
    orient_loose_mesh,
    ply_space,
    read_mesh,
    spine_frame,
    spine_from_meshes,
    subject_key,
    symmetry_yaw_deg,
)
from usx_model.sim.phantom.types import Spine, VertebraMesh

REAL = Path(REAL_ROOT)
PLY = REAL / "verse19_L1" / "sub-verse016_segment_20.ply"
VOLUME_DIR = REAL / "verse_sub-verse004"
needs_real = pytest.mark.skipif(not PLY.is_file(), reason="real vertebrae not available")


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("sub-verse010_segment_20.ply", 1),
        ("sub-verse010_segment_24.stl", 5),
        ("patient7_L3.ply", 3),
        ("l2-scan.PLY", 2),
        ("sub-verse004-L4_20.ply", None),  # two tokens that disagree
        ("vertebra.ply", None),
        ("sub-verse021_segment_19.ply", None),  # T12: not lumbar
        ("L6.ply", None),
    ],
)
def test_level_from_name(name, level):
    if level is None:
        with pytest.raises(ValueError, match=r"in the file name; expected one token L1\.\.L5"):
            level_from_name(name)
    else:
        assert level_from_name(name) == level


def _ascii_ply(path: Path, comment: str | None) -> Path:
    head = ["ply", "format ascii 1.0"] + ([comment] if comment else [])
    head += ["element vertex 3", "property float x", "property float y", "property float z"]
    head += ["element face 1", "property list uchar int vertex_indices", "end_header"]
    path.write_text("\n".join([*head, "0 0 0", "1 0 0", "0 1 0", "3 0 1 2"]) + "\n")
    return path


@pytest.mark.parametrize(
    ("comment", "space"),
    [
        ("comment SPACE=RAS", "RAS"),
        ("comment SPACE=LPS", "LPS"),
        ("comment usx phantom, mm, SPACE=LPS", "LPS"),  # the phantom's own header
        ("comment space = ras (Slicer)", "RAS"),
        ("comment NOSPACE=RAS", None),
        ("comment made by hand", None),
        (None, None),
    ],
)
def test_ply_space(tmp_path, comment, space):
    assert ply_space(_ascii_ply(tmp_path / "m_L1.ply", comment)) == space


def _mirror_symmetric_cloud(n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(1)
    half = rng.uniform([2, -30, -20], [40, 30, 20], (n, 3)) * [1, 1, 1]
    half[:, 1] += 0.02 * half[:, 0] ** 2  # not symmetric in y, only in x
    return np.concatenate([half, half * [-1, 1, 1]])


@pytest.mark.parametrize("yaw_deg", [-17.0, 0.0, 9.0])
def test_symmetry_yaw_finds_the_mirror_plane(yaw_deg):
    pts = _mirror_symmetric_cloud() @ Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix().T
    assert symmetry_yaw_deg(pts + [5.0, -3.0, 1.0]) == pytest.approx(yaw_deg, abs=1.0)


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


@needs_real
@pytest.mark.parametrize(
    ("turn_deg", "tilt_deg", "ras", "level", "tol_mm", "turned"),
    [
        (12.0, 0.0, False, None, 0.2, ""),  # yaw only: undone up to the 1 deg grid
        (180.0 + 8.0, 0.0, False, None, 0.2, "turned 180 deg"),  # a prone scan: turned back
        (0.0, 0.0, True, None, 0.2, ""),  # RAS header
        (6.0, 15.0, False, 1, 0.5, ""),  # sagittal tilt: undone by ICP onto the template
        (180.0 + 8.0, 0.0, False, 1, 0.5, "axes turned"),  # with a level, the template decides
        (0.0, 90.0, False, 1, 0.5, "axes turned"),  # stored with y up
        (90.0, 0.0, False, 1, 0.5, "axes turned"),  # lying on its side
        (270.0, -90.0, True, 1, 0.5, "axes turned"),
    ],
)
def test_orientation_undoes_a_scanner_pose(turn_deg, tilt_deg, ras, level, tol_mm, turned):
    v, f = read_mesh(PLY)
    ref, _ = orient_loose_mesh(v, f, "LPS", level)
    r = Rotation.from_euler("xz", [tilt_deg, turn_deg], degrees=True).as_matrix()
    moved = v @ r.T + [40.0, -25.0, 300.0]
    if ras:
        moved = moved * [-1.0, -1.0, 1.0]
    got, note = orient_loose_mesh(moved, f, "RAS" if ras else "LPS", level)
    assert _chamfer(got, ref) < tol_mm  # mm: the same pose
    for what in ("turned 180 deg", "axes turned"):
        assert (what in note) == (what == turned), note
    assert ("RAS header converted" in note) == ras
    assert ("ICP onto the phantom L1 template" in note) == (level == 1)


@needs_real
def test_read_mesh_keeps_the_largest_piece():
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    v, f = read_mesh(REAL / "verse19_L1" / "sub-verse010_segment_20.ply")  # has a fragment
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    adj = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(len(v), len(v)))
    assert connected_components(adj, directed=False)[0] == 1
    assert f.max() == len(v) - 1


def test_spine_frame_puts_the_lumbar_axis_on_z():
    tilt = Rotation.from_euler("x", 20, degrees=True).as_matrix()
    centres = np.array([[0.0, 0.0, 40.0 * (5 - lv)] for lv in range(1, 6)]) @ tilt.T + 100.0
    verts = {}
    for lv, c in zip(range(1, 6), centres, strict=True):
        tri = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]) + c
        verts[lv] = VertebraMesh(lv, tri, np.array([[0, 1, 2]]), np.zeros(3, np.uint8), c, c)
    t = spine_frame(Spine("s", verts))
    local = centres @ t[:3, :3].T + t[:3, 3]
    np.testing.assert_allclose(local[:, :2], 0.0, atol=1e-9)
    assert local[0, 2] > local[-1, 2]  # L1 superior
    np.testing.assert_allclose(t[:3, :3] @ t[:3, :3].T, np.eye(3), atol=1e-12)
    assert np.linalg.det(t[:3, :3]) == pytest.approx(1.0)
    assert t[1, 1] > 0.9  # y stays the world's posterior


@needs_real
def test_real_ply_run(tmp_path, tiny_weights):
    folder = tmp_path / "real"
    folder.mkdir()
    (folder / PLY.name).symlink_to(PLY)
    out = tmp_path / "real.json"
    argv = ["evaluate", "--real", str(folder), "--weights", str(tiny_weights("full"))]
    argv += ["--weights-baseline", str(tiny_weights("us_only")), "--no-emd", "--quiet"]
    assert main([*argv, "--json", str(out), "--report", str(tmp_path / "rep")]) == 0
    res = json.loads(out.read_text())
    assert res["split"] == "halfspace" and res["n_vertebrae"] == 1
    assert list(res["methods"]) == ["full", "us_only"]
    assert set(res["methods"]["full"]) >= {"whole", "arch", "body", "arch_hs", "body_hs"}
    row = res["per_vertebra"][0]
    assert row["name"] == "sub-verse016_segment_20" and row["level"] == 1
    assert row["cd_l1_mm"] == row["methods"]["full"]["whole"]["cd_l1_mm"] > 0
    assert row["methods"]["full"]["arch"] == row["methods"]["full"]["arch_hs"]
    assert row["neighbours"] is False and row["frame"].startswith("LPS header")
    assert len(list((tmp_path / "rep").glob("case_*.png"))) == 3


@pytest.mark.slow  # ~6 s idle, ~27 s on the shared 2-core machine under load
@pytest.mark.skipif(not VOLUME_DIR.is_dir(), reason="real vertebrae not available")
def test_real_verse_volume_run(tmp_path, tiny_weights):
    out = tmp_path / "volume.json"
    argv = ["evaluate", "--real", str(VOLUME_DIR), "--weights", str(tiny_weights("full"))]
    argv += ["--no-emd", "--quiet", "--json", str(out), "--report", str(tmp_path / "rep")]
    assert main(argv) == 0
    res = json.loads(out.read_text())
    names = [r["name"] for r in res["per_vertebra"]]
    assert names == [f"sub-verse004-L{lv}" for lv in range(1, 6)]
    assert all(r["neighbours"] for r in res["per_vertebra"])
    assert res["methods"]["full"]["whole"]["cd_l1_mm"]["n"] == 5


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["vertebra.ply"], "vertebra.ply: no level in the file name"),
        ([], r"no mesh \(\*.ply, \*.stl, \*.obj, \*.off, \*.nii.gz, \*.nii\) or \*_seg-vert"),
        (["sub-x_seg-vert_msk.nii.gz"], "no centroid file sub-x\\*_ctd.json beside it"),
    ],
)
def test_real_bad_folder(tmp_path, tiny_weights, capsys, files, message):
    folder = tmp_path / "real"
    folder.mkdir()
    for name in files:
        _ascii_ply(folder / name, None)
    argv = ["evaluate", "--real", str(folder), "--weights", str(tiny_weights("full"))]
    rc = main([*argv, "--json", str(tmp_path / "o.json"), "--report", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2
    assert re.search(message, err), err


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("verse521_L1.ply", "verse521"),
        ("patient-7_L3_seg.stl", "patient_7_seg"),
        ("sub-verse010_segment_20.ply", "sub_verse010_segment_20"),
    ],
)
def test_subject_key_drops_the_level_token(name, key):
    assert subject_key(name) == key


def test_subject_key_of_a_bare_level_name_is_its_folder(tmp_path):
    folder = tmp_path / "visible_human_male"
    folder.mkdir()
    assert subject_key(folder / "L3.ply") == "visible_human_male"


@pytest.mark.parametrize(
    ("centroids", "expected"),
    [
        ({1: [0, 0, 70], 2: [0, 3, 36], 3: [0, 0, 0]}, True),
        ({1: [0, 0, 0], 2: [0, 0, 0]}, False),  # each centred on its own: loose
        ({1: [0, 0, 70], 3: [0, 0, 0]}, False),  # a level missing between them
        ({2: [0, 0, 80], 3: [0, 0, 0]}, False),  # too far apart for neighbours
        ({4: [0, 0, 0]}, False),
    ],
)
def test_in_relation(centroids, expected):
    assert in_relation({k: np.array(v, float) for k, v in centroids.items()}) is expected


def _write_meshes(folder: Path, spine: Spine, centred: bool = False) -> None:
    """``pat_L<k>.ply`` per level, in a scanner pose (or each centred on its own)."""
    import open3d as o3d

    shift = np.array([12.0, -40.0, 300.0])  # a scanner pose: world origin elsewhere
    for lv, vm in spine.vertebrae.items():
        v = vm.vertices_mm - vm.vertices_mm.mean(0) if centred else vm.vertices_mm + shift
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(vm.faces)
        )
        o3d.io.write_triangle_mesh(str(folder / f"pat_L{lv}.ply"), mesh)


def test_meshes_of_one_person_in_relation_become_one_spine(tmp_path):
    from usx_model.sim.phantom.spine import generate_spine

    spine = generate_spine(5, levels=(1, 2, 3))
    _write_meshes(tmp_path, spine)
    (case,) = find_real_cases(tmp_path)
    assert case.name == "pat" and case.neighbours and sorted(case.spine.levels) == [1, 2, 3]
    assert "3 meshes in relation" in case.frame_note
    # a rigid move: the distances between the levels stay what they were
    before = [spine.vertebrae[lv].vertices_mm.mean(0) for lv in (1, 2, 3)]
    after = [case.spine.vertebrae[lv].vertices_mm.mean(0) for lv in (1, 2, 3)]
    for i, j in [(0, 1), (1, 2), (0, 2)]:
        assert np.linalg.norm(after[i] - after[j]) == pytest.approx(
            np.linalg.norm(before[i] - before[j]), abs=0.05
        )
    # z runs along the lumbar axis towards L1
    assert after[0][2] > after[1][2] > after[2][2]
    loose = find_real_cases(tmp_path, loose=True)
    assert [c.name for c in loose] == ["pat_L1", "pat_L2", "pat_L3"]
    assert not any(c.neighbours for c in loose)
    # alone in place: one case per level, no neighbours, the spine frame's rotation kept
    alone = alone_in_place([case])
    assert [c.name for c in alone] == ["pat-L1", "pat-L2", "pat-L3"]
    assert not any(c.neighbours for c in alone)
    for c, lv in zip(alone, (1, 2, 3), strict=True):
        v = c.spine.vertebrae[lv].vertices_mm
        ref = case.spine.vertebrae[lv].vertices_mm
        np.testing.assert_allclose(v.mean(0), 0.0, atol=1e-9)
        np.testing.assert_allclose(v, ref - ref.mean(0), atol=1e-9)


def test_spine_from_meshes_gives_the_whole_lumbar_spine(tmp_path):
    from usx_model.sim.phantom.spine import generate_spine

    spine = generate_spine(6)
    _write_meshes(tmp_path, spine)
    got = spine_from_meshes(tmp_path)
    assert got.levels == [1, 2, 3, 4, 5] and not got.frames  # laid prone by the sweep
    c = {lv: got.vertebrae[lv].vertices_mm.mean(0) for lv in got.levels}
    c0 = {lv: spine.vertebrae[lv].vertices_mm.mean(0) for lv in spine.levels}
    for a, b in [(1, 2), (2, 3), (3, 4), (4, 5), (1, 5)]:
        assert np.linalg.norm(c[a] - c[b]) == pytest.approx(np.linalg.norm(c0[a] - c0[b]), abs=0.05)
    assert c[1][2] > c[5][2]  # z towards L1
    for lv in got.levels:  # the half-space parts the X-ray projects: a body in front
        vm = got.vertebrae[lv]
        assert vm.body_centroid_mm[1] < vm.centroid_mm[1]


@pytest.mark.parametrize(
    ("levels", "centred", "message"),
    [
        ((1, 2, 3), False, "expected levels L1-L5 in"),
        ((1, 2, 3, 4, 5), True, "found 0 such groups among 5 cases"),  # each on its own
        (None, False, "is not a folder"),
    ],
)
def test_spine_from_meshes_refuses_what_is_not_one_lumbar_spine(tmp_path, levels, centred, message):
    from usx_model.sim.phantom.spine import generate_spine

    folder = tmp_path / "meshes"
    if levels is not None:
        folder.mkdir()
        _write_meshes(folder, generate_spine(6, levels=levels), centred=centred)
    with pytest.raises((ValueError, FileNotFoundError), match=f"--meshes: .*{message}"):
        spine_from_meshes(folder)


@pytest.mark.parametrize("suffix", [".obj", ".off", ".stl"])
def test_other_mesh_formats_read_as_the_ply(tmp_path, suffix):
    import open3d as o3d

    from usx_model.sim.phantom.spine import generate_spine

    vm = generate_spine(7, levels=(2,)).vertebrae[2]
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vm.vertices_mm), o3d.utility.Vector3iVector(vm.faces)
    )
    mesh.compute_vertex_normals()  # STL needs normals
    for ext in (".ply", suffix):
        assert o3d.io.write_triangle_mesh(str(tmp_path / f"pat_L2{ext}"), mesh)
    v_ply, _ = read_mesh(tmp_path / "pat_L2.ply")
    v_other, _ = read_mesh(tmp_path / f"pat_L2{suffix}")
    assert cKDTree(v_ply).query(v_other)[0].max() < 1e-3  # the same surface
    (tmp_path / "pat_L2.ply").unlink()
    (case,) = find_real_cases(tmp_path, loose=True)
    assert case.spine.levels == [2] and case.source.endswith(suffix)


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        (0.001, r"spans 0\.0\d+ .*expected a lumbar vertebra of 30-200 mm; in metres\? scale"
         r" it by 1000"),
        (0.1, r"spans \d\.\d+ .*; in centimetres\? scale it by 10 to millimetres"),
        (5.0, r"spans \d{3}\.?\d* along its longest axis; expected a lumbar vertebra of"
         r" 30-200 mm$"),
    ],
)  # fmt: skip
def test_a_mesh_not_in_millimetres_is_refused_with_the_likely_unit(tmp_path, scale, message):
    import open3d as o3d

    from usx_model.sim.phantom.spine import generate_spine

    vm = generate_spine(7, levels=(2,)).vertebrae[2]
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vm.vertices_mm * scale), o3d.utility.Vector3iVector(vm.faces)
    )
    o3d.io.write_triangle_mesh(str(tmp_path / "pat_L2.ply"), mesh)
    with pytest.raises(ValueError, match=message):
        read_mesh(tmp_path / "pat_L2.ply")


def test_meshes_in_relation_written_in_ras_without_a_header_are_turned_back(tmp_path):
    import open3d as o3d

    from usx_model.sim.phantom.spine import generate_spine

    spine = generate_spine(5, levels=(1, 2, 3))
    (tmp_path / "lps").mkdir()
    _write_meshes(tmp_path / "lps", spine)
    (tmp_path / "ras").mkdir()
    for lv, vm in spine.vertebrae.items():  # the same scanner pose, x and y negated, no header
        v = (vm.vertices_mm + [12.0, -40.0, 300.0]) * [-1.0, -1.0, 1.0]
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(vm.faces)
        )
        mesh.compute_vertex_normals()
        o3d.io.write_triangle_mesh(str(tmp_path / "ras" / f"pat_L{lv}.stl"), mesh)
    (lps,) = find_real_cases(tmp_path / "lps")
    (ras,) = find_real_cases(tmp_path / "ras")
    for lv in (1, 2, 3):
        a, b = lps.spine.vertebrae[lv].vertices_mm, ras.spine.vertebrae[lv].vertices_mm
        assert cKDTree(a).query(b)[0].max() < 1e-3, lv  # the same spine in the spine frame
    assert "turned 180 deg" in ras.frame_note and "turned" not in lps.frame_note


def _box_masks(folder: Path, affine: np.ndarray) -> None:
    """``vertebrae_L1.nii.gz`` .. ``_L3``: one box each (24 x 28 x 22 voxels) 27 apart."""
    import nibabel as nib

    for k, lv in enumerate((3, 2, 1)):  # L3 lowest
        vol = np.zeros((40, 40, 100), np.uint8)
        vol[8:32, 6:34, 10 + 27 * k : 32 + 27 * k] = 1
        nib.save(nib.Nifti1Image(vol, affine), str(folder / f"vertebrae_L{lv}.nii.gz"))


def test_one_vertebra_masks_of_a_ct_are_one_spine_in_lps(tmp_path):
    affine = np.diag([1.5, 1.5, 1.5, 1.0])  # RAS voxels of 1.5 mm
    _box_masks(tmp_path, affine)
    v, _ = read_mesh(tmp_path / "vertebrae_L2.nii.gz")
    # LPS = RAS with x and y negated: the box spans voxels 8..31 (x), 6..33 (y)
    assert -32 * 1.5 < v[:, 0].min() and v[:, 0].max() < -7 * 1.5
    assert -34 * 1.5 < v[:, 1].min() and v[:, 1].max() < -5 * 1.5
    (case,) = find_real_cases(tmp_path)
    assert case.name == "vertebrae" and case.neighbours and case.spine.levels == [1, 2, 3]
    assert "headers: LPS" in case.frame_note


@pytest.mark.parametrize(
    ("volume", "message"),
    [
        (np.zeros((20, 20, 20), np.uint8), "the mask is empty"),
        (np.ones((20, 20, 20, 2), np.uint8), "expected a 3-D mask"),
        (np.pad(np.ones((4, 4, 4), np.uint8), 3), "spans .* expected a lumbar vertebra"),
    ],
)
def test_a_bad_mask_is_refused(tmp_path, volume, message):
    import nibabel as nib

    nib.save(nib.Nifti1Image(volume, np.eye(4)), str(tmp_path / "vertebrae_L1.nii.gz"))
    with pytest.raises(ValueError, match=message):
        find_real_cases(tmp_path)


@needs_real
def test_a_vertebra_mask_is_meshed_as_the_verse_volume_meshes_it(tmp_path):
    import nibabel as nib

    from usx_model.sim.phantom.verse import load_verse_spine

    mask = VOLUME_DIR / "sub-verse004_seg-vert_msk.nii.gz"
    img = nib.load(str(mask))
    labels = np.asarray(img.dataobj)
    nib.save(
        nib.Nifti1Image((labels == 22).astype(np.uint8), img.affine), str(tmp_path / "L3.nii.gz")
    )
    v, f = read_mesh(tmp_path / "L3.nii.gz")
    ref = load_verse_spine(str(mask), str(VOLUME_DIR / "sub-verse004_seg-subreg_ctd.json"))
    assert np.allclose(v, ref.vertebrae[3].vertices_mm) and np.array_equal(
        f, ref.vertebrae[3].faces
    )
