"""Real vertebrae as an evaluation set: load, orient to LPS, simulate the views, sample GT.

Inputs in one folder (evaluation only, never training):

- loose meshes ``*.ply`` / ``*.stl`` / ``*.obj`` / ``*.off`` in mm, one vertebra each (a
  mesh whose size is not a vertebra's in mm is refused), level from the file name: a token
  ``L1``..``L5`` or a VerSe label ``20``..``24`` (``sub-verse010_segment_20.ply`` is L1);
- one-vertebra masks ``*.nii.gz`` / ``*.nii`` (voxels > 0; e.g. TotalSegmentator's
  ``vertebrae_L1.nii.gz``), meshed in their CT's LPS space, level from the name as above;
- VerSe label volumes ``*_seg-vert_msk.nii.gz`` with a centroid file ``<same prefix>*_ctd.json``
  beside them: every lumbar level in the volume;
- per-level meshes of one person that keep their anatomical relation (``<subject>_L1.ply``
  .. ``_L5.ply``, or ``L1.ply`` .. in a subject's folder, centroids 20-50 mm apart): one
  spine, simulated with its neighbours (``find_real_cases(loose=True)`` takes them apart).

Frames. Every case is brought into the frame the network was trained in (mm, x patient
left, y posterior, z superior):

- loose meshes: the file's world axes are taken as LPS (PLY header ``comment SPACE=LPS``;
  ``SPACE=RAS`` is converted; without a header — e.g. STL — LPS is assumed and the JSON says
  so). Two anatomical rules then fix what a scanner pose can leave wrong: (1) the spinous
  process points posterior — the posterior-most 10 mm slab of a vertebra is narrow in x
  (the spinous tip) while the anterior-most is the wide body; only when the +y end is
  clearly the wider one (×:data:`FLIP_RATIO`, e.g. a prone scan) the mesh is turned 180°
  about z (a proper rotation, so left stays left); (2) the mid-sagittal plane: the yaw
  about z that makes the vertebra most mirror-symmetric in x (search ±30° in 1° steps,
  mean nearest-neighbour distance of the mirrored surface samples) is removed. (3) A CT
  keeps the patient's sagittal curvature (a loose L1 sits tilted by up to ~20° in world
  axes), so the pose is refined by rigid ICP onto a phantom vertebra of the same level in
  its own, untilted frame (:func:`template_rotation`; only a rotation, no scaling, and the
  phantom is procedural, never fitted to real data). The vertebra is centred at its
  surface centroid. PCA axes were tried and rejected: on the ten VerSe L1s the smallest
  principal axis is 13–29° off the superior axis and x/y variances nearly tie, so PCA
  frames would be arbitrary.
- VerSe volumes and meshes in relation: the loader's (or header's) LPS world frame is
  turned into the phantom's spine frame: z along the lumbar axis (principal direction of
  the body centroids, pointing to L1), y the world posterior made orthogonal to it, origin
  at the mean body centroid. The
  vertebrae keep their anatomical relation, so the US simulation sees the neighbours.

Part labels are unknown for real meshes, so the simulators get the paper's half-space
cut as labels (body = vertices with y <= the vertebra's centroid y, everything else arch):
the X-ray projects that "body", and the arch/body metrics use the half-space split
(``split: "halfspace"`` in the JSON). A loose mesh is simulated alone: no neighbours
occlude it or enter its crop box, unlike in the training data.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from usx_model.base.parts import VERSE_LABELS, Part
from usx_model.evaluation.pipeline import EvalSet
from usx_model.network.prepare import resample
from usx_model.sim.phantom.mesh_ops import largest_component, orient_outward
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.scene import sample_surface
from usx_model.sim.us_partial import simulate_us_partials
from usx_model.sim.xray import xray_points_25d

#: The real vertebrae beside the repository (``<repo>/../shared/data/real_vertebrae``:
#: evaluation and phantom calibration only, never training); the environment variable
#: ``USX_REAL_VERTEBRAE`` points elsewhere.
REAL_ROOT = os.environ.get(
    "USX_REAL_VERTEBRAE",
    str(Path(__file__).resolve().parents[4] / "shared" / "data" / "real_vertebrae"),
)

#: Mesh files Open3D reads as triangle surfaces (any other, e.g. VTK, must be converted).
MESH_SUFFIXES = (".ply", ".stl", ".obj", ".off")
#: A lumbar vertebra's longest extent lies in this range, mm (real L1-L5 61-100 mm).
VERTEBRA_EXTENT_MM = (30.0, 200.0)
#: Consecutive levels of one person lie this far apart (centroids, mm): lumbar vertebrae
#: are about 30-40 mm high; loose meshes centred on their own sit near 0.
RELATION_MM = (20.0, 50.0)
VOLUME_SUFFIX = "_seg-vert_msk.nii.gz"
#: One vertebra's binary mask in its CT's space (TotalSegmentator's ``vertebrae_L1.nii.gz``):
#: meshed like a VerSe label; any other name ending so, not :data:`VOLUME_SUFFIX`.
MASK_SUFFIXES = (".nii.gz", ".nii")
#: The +y slab must be this much wider than the -y slab before the mesh is turned around.
FLIP_RATIO = 1.5
_SLAB_MM = 10.0
_YAW_RANGE_DEG = 30.0
_ORIENT_POINTS = 4096
#: Seed of the phantom spine whose vertebrae are the orientation templates.
TEMPLATE_SEED = 0
#: A loose mesh is turned to another axis order only when that fits the template this much
#: better (chamfer, mm): a quarter turn off fits 3-5 mm worse, an upright mesh best as is.
AXIS_TURN_GAIN_MM = 1.0


@dataclass
class RealCase:
    """A real spine (one or more vertebrae) in the network's LPS frame, with provenance."""

    name: str
    spine: Spine
    source: str
    frame_note: str
    neighbours: bool


def level_from_name(path: str | Path) -> int:
    """Level 1..5 from a file name: a token ``L1``..``L5`` or a VerSe label 20..24.

    Raises:
        ValueError: no level token, or two tokens that disagree.
    """
    stem = Path(path).name.split(".")[0]
    found = set()
    for tok in re.split(r"[^0-9A-Za-z]+", stem):
        m = re.fullmatch(r"[Ll]([1-5])", tok)
        if m:
            found.add(int(m.group(1)))
        elif tok.isdigit() and int(tok) in VERSE_LABELS:
            found.add(VERSE_LABELS[int(tok)])
    if len(found) != 1:
        what = "no level" if not found else f"conflicting levels {sorted(found)}"
        raise ValueError(
            f"{Path(path).name}: {what} in the file name; expected one token L1..L5 or a "
            "VerSe label 20..24 (e.g. sub-verse010_segment_20.ply)"
        )
    return found.pop()


def ply_space(path: str | Path) -> str | None:
    """The ``SPACE=...`` of a PLY header comment (``LPS``/``RAS``), or None.

    The key may stand anywhere in the comment (3D Slicer writes ``comment SPACE=RAS``;
    usx's phantom ``comment usx phantom, mm, SPACE=LPS``).
    """
    with open(path, "rb") as fh:
        for _ in range(64):
            line = fh.readline().decode("ascii", "replace").strip()
            m = re.fullmatch(r"comment\b.*?\bSPACE\s*=\s*(\w+).*", line, flags=re.IGNORECASE)
            if m:
                return m.group(1).upper()
            if line == "end_header" or not line:
                break
    return None


def is_level_mask(path: str | Path) -> bool:
    """A one-vertebra NIfTI mask (:data:`MASK_SUFFIXES`), not a VerSe label volume."""
    name = Path(path).name
    return name.lower().endswith(MASK_SUFFIXES) and not name.endswith(VOLUME_SUFFIX)


def read_mask_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) LPS vertices (mm), (F, 3) faces of a binary NIfTI mask (voxels > 0) meshed
    as a VerSe label is (:func:`~usx_model.sim.phantom.verse.mesh_mask`).

    Raises:
        ValueError: not a 3-D volume, no voxel set, or not sized like a vertebra.
    """
    import nibabel as nib

    from usx_model.sim.phantom.verse import mesh_mask, voxel_to_lps

    img = nib.load(str(path))
    data = np.asarray(img.dataobj)
    if data.ndim != 3:
        raise ValueError(f"{path}: expected a 3-D mask, got shape {data.shape}")
    mask = data > 0
    if not mask.any():
        raise ValueError(f"{path}: the mask is empty (no voxel > 0)")
    vm = mesh_mask(mask, voxel_to_lps(img.affine))
    check_vertebra_size(vm.vertices_mm, path)
    return vm.vertices_mm, vm.faces


def read_mesh(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices (mm), (F, 3) faces of a PLY/STL/OBJ/OFF (or of a one-vertebra mask,
    :func:`read_mask_mesh`): largest connected piece, outward normals.

    Raises:
        ValueError: no triangles, or a piece whose size is not a lumbar vertebra's in mm
            (:data:`VERTEBRA_EXTENT_MM`; the message says when metres or centimetres fit).
    """
    import open3d as o3d

    if is_level_mask(path):
        return read_mask_mesh(path)
    mesh = o3d.io.read_triangle_mesh(str(path))
    # An STL stores every triangle with its own three corners: without merging the equal
    # ones, each triangle is a connected piece of its own and the largest is one triangle.
    mesh.remove_duplicated_vertices()
    v = np.asarray(mesh.vertices, dtype=np.float64)
    f = np.asarray(mesh.triangles, dtype=np.int64)
    if len(v) == 0 or len(f) == 0:
        raise ValueError(
            f"{path}: no triangles could be read (expected a {'/'.join(MESH_SUFFIXES)} surface)"
        )
    v, f = largest_component(v, f)
    check_vertebra_size(v, path)
    return v, orient_outward(v, f)


def check_vertebra_size(vertices: np.ndarray, path: str | Path) -> None:
    """Refuse vertices (V, 3) whose longest bounding-box extent is not a lumbar vertebra's
    in mm: a mesh in metres or centimetres would be simulated as a speck."""
    extent = float(np.ptp(vertices, axis=0).max())
    lo, hi = VERTEBRA_EXTENT_MM
    if lo <= extent <= hi:
        return
    hint = ""
    for unit, factor in (("metres", 1000.0), ("centimetres", 10.0)):
        if lo <= extent * factor <= hi:
            hint = f"; in {unit}? scale it by {factor:g} to millimetres"
    raise ValueError(
        f"{path}: the largest piece spans {extent:.4g} along its longest axis; expected a"
        f" lumbar vertebra of {lo:g}-{hi:g} mm{hint}"
    )


def _halfspace_parts(v: np.ndarray) -> np.ndarray:
    return np.where(v[:, 1] <= v[:, 1].mean(), int(Part.BODY), int(Part.LAMINA)).astype(np.uint8)


def _make_vertebra(level: int, v: np.ndarray, f: np.ndarray) -> VertebraMesh:
    part = _halfspace_parts(v)
    return VertebraMesh(
        level=level,
        vertices_mm=v,
        faces=f,
        part=part,
        centroid_mm=v.mean(axis=0),
        body_centroid_mm=v[part == int(Part.BODY)].mean(axis=0),
    )


def _rot_z(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _spinous_anterior(q: np.ndarray) -> bool:
    """Centred (N, 3) surface points whose +y end is much wider than their -y end: the body
    lies towards +y, so the spinous process points to -y (anterior in LPS)."""
    return _slab_width(q, posterior=True) > FLIP_RATIO * _slab_width(q, posterior=False)


def _slab_width(q: np.ndarray, posterior: bool) -> float:
    y = q[:, 1]
    s = q[y >= y.max() - _SLAB_MM] if posterior else q[y <= y.min() + _SLAB_MM]
    return float(np.percentile(s[:, 0], 95) - np.percentile(s[:, 0], 5))


def symmetry_yaw_deg(points: np.ndarray) -> float:
    """Yaw (deg, about z) of the mirror plane that best maps (N, 3) points onto themselves.

    The plane contains z and passes through the centroid; its normal is (cos a, sin a, 0).
    Returns a in [-30, 30] minimising the mean nearest-neighbour distance after mirroring.
    """
    q = points - points.mean(axis=0)
    tree = cKDTree(q)
    best_a, best_d = 0.0, np.inf
    for a in np.arange(-_YAW_RANGE_DEG, _YAW_RANGE_DEG + 1e-9, 1.0):
        n = np.array([np.cos(np.deg2rad(a)), np.sin(np.deg2rad(a)), 0.0])
        d = float(tree.query(q - 2.0 * (q @ n)[:, None] * n)[0].mean())
        if d < best_d:
            best_a, best_d = float(a), d
    return best_a


@functools.lru_cache(maxsize=5)
def template_points(level: int) -> np.ndarray:
    """(4096, 3) surface samples of phantom vertebra ``level`` in its own frame, centred.

    The phantom of seed :data:`TEMPLATE_SEED`, taken out of its spine pose with the
    inverse of ``frames["T_spine_L<k>"]``: no sagittal or coronal tilt, body centre at
    the origin — a pose inside the training distribution (phantom tilts are ±~12°).
    """
    from usx_model.sim.phantom.spine import generate_spine

    spine = generate_spine(TEMPLATE_SEED, levels=(level,))
    t = np.asarray(spine.frames[f"T_spine_L{level}"], dtype=np.float64)
    vert = spine.vertebrae[level]
    local = (vert.vertices_mm - t[:3, 3]) @ t[:3, :3]
    pts, _ = sample_surface(
        VertebraMesh(level, local, vert.faces, vert.part, local.mean(0), local.mean(0)),
        _ORIENT_POINTS,
        seed=1,
    )
    return pts - pts.mean(axis=0)


def template_rotation(points: np.ndarray, level: int) -> np.ndarray:
    """(3, 3) rotation taking centred (N, 3) points onto the phantom template of ``level``.

    Rigid point-to-point ICP (open3d, via ``phantom.realism.align_rigid``) started from
    the identity, so it only refines an orientation that is already roughly LPS.
    """
    from usx_model.evaluation.realism import align_rigid

    return align_rigid(points - points.mean(axis=0), template_points(level), quick=True)[:3, :3]


def axis_rotations() -> list[np.ndarray]:
    """The 24 rotations that map the coordinate axes onto themselves (identity first)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            r = np.zeros((3, 3))
            r[range(3), perm] = signs
            if np.linalg.det(r) > 0:
                out.append(r)
    return out


def axis_turn(points: np.ndarray, level: int) -> tuple[np.ndarray, float, float]:
    """The axis rotation (3, 3) that best fits centred (N, 3) points to the template of
    ``level`` (chamfer, no ICP), with the chamfer before and after (mm); the identity
    unless that gains :data:`AXIS_TURN_GAIN_MM`. For meshes not stored in a patient
    frame (an exporter with y up, a vertebra lying on its side)."""
    from usx_model.evaluation.realism import chamfer_l1

    tpl = template_points(level)
    rotations = axis_rotations()
    fits = [chamfer_l1(points @ r.T, tpl) for r in rotations]
    best = int(np.argmin(fits))
    if fits[0] - fits[best] < AXIS_TURN_GAIN_MM:
        best = 0
    return rotations[best], fits[0], fits[best]


def orient_loose_mesh(
    v: np.ndarray, f: np.ndarray, space: str | None, level: int | None = None
) -> tuple[np.ndarray, str]:
    """Vertices (V, 3) in the header frame → the vertebra's LPS frame, centred; and a note.

    With ``level``, a mesh whose axes are not the patient's is first turned to them
    (:func:`axis_turn`), and the tilt is finally refined by rigid ICP onto the phantom
    vertebra of that level (:func:`template_rotation`).
    """
    note = []
    v = to_lps(v, space)
    if space == "RAS":
        note.append("RAS header converted to LPS")
    elif space == "LPS":
        note.append("LPS header")
    else:
        note.append(f"no LPS/RAS header ({space or 'none'}): world axes assumed LPS")
    pts, _ = sample_surface(
        VertebraMesh(0, v, f, np.zeros(len(v), np.uint8), v.mean(0), v.mean(0)),
        _ORIENT_POINTS,
        seed=0,
    )
    c = pts.mean(axis=0)
    q, v = pts - c, v - c
    if level is not None:
        r, before, after = axis_turn(q, level)
        if not np.array_equal(r, np.eye(3)):
            q, v = q @ r.T, v @ r.T
            note.append(
                f"axes turned to the L{level} template's (fit {before:.1f} -> {after:.1f} mm):"
                " not stored in patient axes"
            )
    if _spinous_anterior(q):
        r = _rot_z(180.0)
        q, v = q @ r.T, v @ r.T
        note.append("turned 180 deg about z (spinous process was anterior)")
    yaw = symmetry_yaw_deg(q)
    # the mirror normal at angle a should become +x: rotate by -a
    r = _rot_z(-yaw)
    note.append(f"yaw {yaw:+.0f} deg removed (mid-sagittal symmetry)")
    if level is not None:
        r_icp = template_rotation(q @ r.T, level)
        r = r_icp @ r
        deg = np.degrees(Rotation.from_matrix(r_icp).magnitude())
        note.append(f"ICP onto the phantom L{level} template rotated {deg:.0f} deg")
    note.append("centred")
    return v @ r.T, "; ".join(note)


def spine_frame(spine: Spine) -> np.ndarray:
    """4x4 ``T_spine_world``: z along the lumbar axis (to L1), y posterior, origin at bodies."""
    c = np.stack([spine.vertebrae[lv].body_centroid_mm for lv in spine.levels])
    origin = c.mean(axis=0)
    if len(c) >= 2:
        z = np.linalg.svd(c - origin)[2][0]
        z = z if z @ (c[0] - c[-1]) > 0 else -z  # levels sorted L1..L5: L1 is superior
    else:
        z = np.array([0.0, 0.0, 1.0])
    y = np.array([0.0, 1.0, 0.0]) - z[1] * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    t = np.eye(4)
    t[:3, :3] = np.stack([x, y, z])
    t[:3, 3] = -t[:3, :3] @ origin
    return t


def _volume_case(mask: Path) -> RealCase:
    from usx_model.sim.phantom.verse import load_verse_spine

    prefix = mask.name[: -len(VOLUME_SUFFIX)]
    ctd = sorted(mask.parent.glob(f"{prefix}*_ctd.json"))
    if not ctd:
        raise ValueError(f"{mask}: no centroid file {prefix}*_ctd.json beside it")
    world = load_verse_spine(str(mask), str(ctd[0]), spine_id=prefix)
    t = spine_frame(world)
    verts = {}
    for lv, vm in world.vertebrae.items():
        v = vm.vertices_mm @ t[:3, :3].T + t[:3, 3]
        verts[lv] = _make_vertebra(lv, v, vm.faces)
    note = "VerSe LPS world → spine frame (z = lumbar axis through the body centroids)"
    return RealCase(prefix, Spine(prefix, verts), str(mask), note, len(verts) > 1)


def _header_space(path: Path) -> str | None:
    """A mesh file's declared space (PLY header; a mask is meshed into LPS); None for STL,
    OBJ, OFF or no header."""
    if is_level_mask(path):
        return "LPS"
    return ply_space(path) if path.suffix.lower() == ".ply" else None


def to_lps(v: np.ndarray, space: str | None) -> np.ndarray:
    """(V, 3) vertices in the header's space -> LPS (RAS flips x and y; else unchanged)."""
    return v * np.array([-1.0, -1.0, 1.0]) if space == "RAS" else v


def _mesh_case(path: Path, mesh: tuple[np.ndarray, np.ndarray] | None = None) -> RealCase:
    level = level_from_name(path)
    v, f = read_mesh(path) if mesh is None else mesh
    v, note = orient_loose_mesh(v, f, _header_space(path), level)
    name = path.name.split(".")[0]
    spine = Spine(name, {level: _make_vertebra(level, v, f)})
    return RealCase(name, spine, str(path), note, False)


def subject_key(path: str | Path) -> str:
    """The file name without its level token: meshes of one person share it
    (``verse521_L1.ply`` -> ``verse521``); a bare ``L3.ply`` takes its real folder's name."""
    path = Path(path)
    stem = path.name.split(".")[0]
    toks = [t for t in re.split(r"[^0-9A-Za-z]+", stem) if not re.fullmatch(r"[Ll][1-5]", t)]
    key = "_".join(t for t in toks if t)
    return key or path.resolve().parent.name


def in_relation(centroids: dict[int, np.ndarray]) -> bool:
    """True when consecutive levels' centroids (mm) lie :data:`RELATION_MM` apart: meshes of
    one person in their scanner pose, not vertebrae each centred on its own."""
    levels = sorted(centroids)
    if len(levels) < 2 or levels != list(range(levels[0], levels[-1] + 1)):
        return False
    gaps = [np.linalg.norm(centroids[a] - centroids[b]) for a, b in itertools.pairwise(levels)]
    return all(RELATION_MM[0] <= g <= RELATION_MM[1] for g in gaps)


def spinous_anterior(vertices: list[np.ndarray], faces: list[np.ndarray]) -> bool:
    """True when most of these vertebrae (each (V, 3), (F, 3), mm) have their narrow end,
    the spinous process, towards -y: a frame whose +y is anterior (RAS read as LPS)."""
    votes = []
    for v, f in zip(vertices, faces, strict=True):
        vm = VertebraMesh(0, v, f, np.zeros(len(v), np.uint8), v.mean(0), v.mean(0))
        q = sample_surface(vm, _ORIENT_POINTS, seed=0)[0]
        q = q - q.mean(axis=0)
        votes.append(_spinous_anterior(q))
    return 2 * sum(votes) > len(votes)


def _group_case(name: str, paths: list[Path], meshes: dict) -> RealCase:
    """Per-level meshes of one person in relation -> one spine in its spine frame.

    A file without an LPS/RAS header (STL always) is taken as LPS; when the spinous
    processes then point anterior, the meshes were RAS (or otherwise turned about the
    body axis) and are turned 180 deg about z, as a loose mesh is.
    """
    lps, notes = {}, set()
    for path in paths:
        v, f = meshes[path]
        space = _header_space(path)
        notes.add(space or "none")
        lps[level_from_name(path)] = (to_lps(v, space), f)
    turned = spinous_anterior([v for v, _ in lps.values()], [f for _, f in lps.values()])
    r = _rot_z(180.0) if turned else np.eye(3)
    world = {lv: _make_vertebra(lv, v @ r.T, f) for lv, (v, f) in lps.items()}
    t = spine_frame(Spine(name, world))
    verts = {
        lv: _make_vertebra(lv, vm.vertices_mm @ t[:3, :3].T + t[:3, 3], vm.faces)
        for lv, vm in world.items()
    }
    note = (
        f"{len(verts)} meshes in relation (headers: {', '.join(sorted(notes))}; none = LPS"
        " assumed, RAS converted)"
        + ("; turned 180 deg about z (spinous processes were anterior)" if turned else "")
        + " -> spine frame (z = lumbar axis through the bodies)"
    )
    return RealCase(name, Spine(name, verts), ", ".join(str(p) for p in paths), note, True)


def find_real_cases(
    folder: str | Path, loose: bool = False, option: str = "--real"
) -> list[RealCase]:
    """Every mesh and VerSe volume in ``folder`` (sorted by file name) as a :class:`RealCase`.

    Meshes of one person (same :func:`subject_key`, consecutive levels, centroids
    :data:`RELATION_MM` apart) are one case with their neighbours, like a VerSe volume;
    with ``loose`` every mesh is a case of its own, oriented alone. ``option`` names the
    command-line option in the error messages.

    Raises:
        FileNotFoundError: no such folder. ValueError: nothing usable in it, a mesh
        without a level in its name, a volume without its centroid file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{option}: {folder} is not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    meshes = [p for p in files if p.suffix.lower() in MESH_SUFFIXES or is_level_mask(p)]
    volumes = [p for p in files if p.name.endswith(VOLUME_SUFFIX)]
    if not meshes and not volumes:
        suffixes = ", ".join(f"*{x}" for x in MESH_SUFFIXES + MASK_SUFFIXES)
        raise ValueError(f"{option}: no mesh ({suffixes}) or *{VOLUME_SUFFIX} files in {folder}")
    for p in meshes:
        level_from_name(p)  # fail on a bad name before any slow work
    groups: dict[str, list[Path]] = {}
    for p in meshes:
        groups.setdefault(subject_key(p), []).append(p)
    cases = []
    for key, paths in groups.items():
        levels = [level_from_name(p) for p in paths]
        read: dict[Path, tuple[np.ndarray, np.ndarray]] = {}
        if not loose and len(paths) > 1 and len(set(levels)) == len(levels):
            read = {p: read_mesh(p) for p in paths}
            centroids = {lv: read[p][0].mean(axis=0) for lv, p in zip(levels, paths, strict=True)}
            if in_relation(centroids):
                cases.append(_group_case(key, sorted(paths, key=level_from_name), read))
                continue
        cases.extend(_mesh_case(p, read.get(p)) for p in paths)
    return cases + [_volume_case(p) for p in volumes]


def spine_from_meshes(folder: str | Path) -> Spine:
    """The one real lumbar spine (L1-L5 meshes in relation) in ``folder``, spine frame, mm.

    For ``usx pipeline --meshes``: the robot sweep needs the whole lumbar spine, its
    vertebrae in their anatomical relation (:func:`find_real_cases` groups them); parts
    are the half-space split of :func:`_make_vertebra` (body anterior of the centroid).

    Raises:
        FileNotFoundError: no such folder. ValueError: not exactly one group of meshes in
        relation in it, or one without all of L1-L5.
    """
    cases = find_real_cases(folder, option="--meshes")
    spines = [c for c in cases if c.neighbours]
    if len(spines) != 1:
        raise ValueError(
            f"--meshes: expected one person's per-level meshes in relation in {folder},"
            f" found {len(spines)} such groups among {len(cases)} cases"
        )
    spine = spines[0].spine
    if sorted(spine.levels) != [1, 2, 3, 4, 5]:
        raise ValueError(
            f"--meshes: expected levels L1-L5 in {folder}, got"
            f" {', '.join(f'L{lv}' for lv in sorted(spine.levels))}"
        )
    return spine


def alone_in_place(cases: list[RealCase]) -> list[RealCase]:
    """Each vertebra of every case as a case of its own, kept in the pose it has in its
    case's frame (a spine's lordotic tilt stays) and centred at its vertex centroid.

    Against the same vertebrae in relation this isolates what the neighbours do to the
    simulated views; against :func:`find_real_cases` ``(loose=True)`` what the loose path's
    re-orientation does.
    """
    out = []
    for case in cases:
        for lv in case.spine.levels:
            vm = case.spine.vertebrae[lv]
            v = vm.vertices_mm - vm.vertices_mm.mean(axis=0)
            name = f"{case.name}-L{lv}" if case.neighbours else case.name
            note = f"{case.frame_note}; alone, pose kept, centred"
            out.append(
                RealCase(
                    name,
                    Spine(name, {lv: _make_vertebra(lv, v, vm.faces)}),
                    case.source,
                    note,
                    False,
                )
            )
    return out


def real_eval_set(
    cases: list[RealCase],
    n_gt: int = 8192,
    n_partial: int = 1024,
    n_xray: int = 512,
    seed: int = 0,
) -> EvalSet:
    """Simulate US partial and X-ray points and sample GT for every real vertebra.

    Same sizes and simulators as the dataset builder (US FPS'ed to ``n_partial``, X-ray to
    ``n_xray``, ``n_gt`` area-uniform GT samples), mm, in each case's LPS frame.

    Raises:
        ValueError: a vertebra gets fewer than 16 US points (nothing for the probe to see).
    """
    names, levels, us, xr, gt, info = [], [], [], [], [], []
    for case in cases:
        partials = simulate_us_partials(case.spine, seed=seed)
        xrays = xray_points_25d(case.spine, jitter_seed=seed)
        for lv in case.spine.levels:
            p = partials[lv].points_mm
            name = f"{case.name}-L{lv}" if case.neighbours else case.name
            if len(p) < 16:
                raise ValueError(f"{name}: the simulated US sees only {len(p)} points (< 16)")
            names.append(name)
            levels.append(lv)
            us.append(resample([p], n_partial)[0])
            xr.append(resample([xrays[lv]], n_xray)[0])
            gt.append(sample_surface(case.spine.vertebrae[lv], n_gt, seed=seed + lv)[0])
            info.append(
                {
                    "name": name,
                    "level": lv,
                    "source": case.source,
                    "frame": case.frame_note,
                    "neighbours": case.neighbours,
                    "us_points_raw": len(p),
                }
            )
    return EvalSet(
        names=names,
        levels=np.array(levels, dtype=int),
        us=us,
        xray=xr,
        gt=np.stack(gt),
        gt_part=None,
        split="halfspace",
        meta={"real_cases": info},
    )
