"""Shared fixtures of the core tests.

- a tiny synthetic completion dataset and network;
- toy spines for the simulators and harnesses: a box-and-cylinder lumbar spine with part
  labels (disjoint closed primitives, so line integrals through it are exact: an
  elliptic-cylinder body, two pedicles, a lamina, a spinous process and two transverse
  processes, LPS frame, levels stacked along z) and one-mesh 'spines';
- synthetic B-mode frames with analytic answers.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest
import yaml

from usx_model.base.parts import Part
from usx_model.dataset.schema import VertebraSamples, write_samples
from usx_model.network.config import tiny_config as tiny_network_config
from usx_model.sim.phantom.types import Spine, VertebraMesh

#: The core's tiny network sizes as a training-config "model" section.
TINY_MODEL = {k: v for k, v in tiny_network_config().to_dict().items() if k != "variant"}


def toy_samples(n_spines: int = 6, seed: int = 0, n_gt: int = 256) -> VertebraSamples:
    """Ellipsoid 'vertebrae': body = anterior half (y < 0), US sees the posterior cap."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_spines):
        split = "train" if s < n_spines - 2 else ("val" if s == n_spines - 2 else "test")
        for level in range(1, 6):
            radii = np.array([35.0, 30.0, 20.0]) * rng.uniform(0.85, 1.15, 3)
            d = rng.normal(size=(n_gt, 3))
            gt = d / np.linalg.norm(d, axis=1, keepdims=True) * radii + [0, 0, 40.0 * level]
            part = np.where(gt[:, 1] < 0, 1, 3).astype(np.uint8)
            us = gt[gt[:, 1] > 0.3 * radii[1]][:128]
            us = np.concatenate([us, us[: 128 - len(us)]]) if len(us) < 128 else us
            body = gt[part == 1][:64].copy()
            body[:, 0] = 0.0
            rows.append((us, body, gt, part, level, f"toy-{s}", split))
    cols = list(zip(*rows, strict=True))
    return VertebraSamples(
        us_partial=np.stack(cols[0]),
        xray=np.stack(cols[1]),
        gt=np.stack(cols[2]),
        gt_part=np.stack(cols[3]),
        level=np.array(cols[4]),
        spine_id=np.array(cols[5]),
        split=np.array(cols[6]),
        norm_centre_mm=np.zeros((len(rows), 3)),
        norm_scale_mm=np.ones(len(rows)),
    )


@pytest.fixture
def make_toy_samples():
    """The ``toy_samples`` factory, for tests that need variations of the toy data."""
    return toy_samples


@pytest.fixture
def toy_dataset(tmp_path):
    path = tmp_path / "toy.h5"
    options = {"residuals": "toy.npz", "residual_scale": [0.0, 1.0]}
    write_samples(path, toy_samples(), {"seed": 0, "n_spines": 6, "options": options})
    return path


@pytest.fixture
def tiny_config(tmp_path, toy_dataset):
    path = tmp_path / "train.yaml"
    cfg = {
        "data": toy_dataset.name,
        "model": TINY_MODEL,
        "epochs": 2,
        "batch_size": 4,
        "n_gt": 128,
        "lr": 1e-3,
        "threads": 1,
        "device": "cpu",
        # the small test runs keep the reference's prior path, no augmentation, the
        # compact schedule as it is and a short decay period
        "prior_path": True,
        "rotation_aug_deg": 0.0,
        "schedule_overrides": {},
        "lr_decay_every": 4,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


# --- toy spines -------------------------------------------------------------------------

LEVEL_PITCH_MM = 38.0
BODY_RADII_MM = (22.0, 16.0)
BODY_HEIGHT_MM = 26.0


def _box(
    lo: tuple[float, float, float], hi: tuple[float, float, float]
) -> o3d.geometry.TriangleMesh:
    size = np.subtract(hi, lo)
    return o3d.geometry.TriangleMesh.create_box(*size).translate(lo)


def toy_vertebra(level: int) -> VertebraMesh:
    """One toy vertebra; L1 on top, bodies centred on x = y = 0."""
    z0 = (3 - level) * LEVEL_PITCH_MM
    body = o3d.geometry.TriangleMesh.create_cylinder(1.0, BODY_HEIGHT_MM, 48, 4)
    bv = np.asarray(body.vertices) * [BODY_RADII_MM[0], BODY_RADII_MM[1], 1.0]
    body.vertices = o3d.utility.Vector3dVector(bv + [0, 0, z0])
    pieces = [
        (body, Part.BODY),
        (_box((-20, 17, z0 - 6), (-12, 29, z0 + 6)), Part.PEDICLE),
        (_box((12, 17, z0 - 6), (20, 29, z0 + 6)), Part.PEDICLE),
        (_box((-14, 30, z0 - 12), (14, 36, z0 + 10)), Part.LAMINA),
        (_box((-3, 37, z0 - 10), (3, 62, z0 + 6)), Part.SPINOUS),
        (_box((-38, 24, z0 - 5), (-21, 29, z0 + 5)), Part.TRANSVERSE),
        (_box((21, 24, z0 - 5), (38, 29, z0 + 5)), Part.TRANSVERSE),
    ]
    verts, faces, parts = [], [], []
    offset = 0
    for mesh, code in pieces:
        v = np.asarray(mesh.vertices)
        verts.append(v)
        faces.append(np.asarray(mesh.triangles) + offset)
        parts.append(np.full(len(v), int(code), dtype=np.uint8))
        offset += len(v)
    v = np.vstack(verts)
    return VertebraMesh(
        level=level,
        vertices_mm=v,
        faces=np.vstack(faces).astype(np.int64),
        part=np.concatenate(parts),
        centroid_mm=v.mean(axis=0),
        body_centroid_mm=np.array([0.0, 0.0, z0]),
    )


def make_toy_spine(levels: tuple[int, ...] = (1, 2, 3, 4, 5)) -> Spine:
    return Spine("toy", {lv: toy_vertebra(lv) for lv in levels})


@pytest.fixture(scope="session")
def toy_spine() -> Spine:
    return make_toy_spine()


def sphere_spine(radius_mm: float = 15.0, centre=(0.0, 0.0, 0.0)) -> Spine:
    """A one-level 'spine' made of a single sphere labelled as body."""
    return mesh_spine(o3d.geometry.TriangleMesh.create_sphere(radius_mm, 40).translate(centre))


def mesh_spine(
    mesh: o3d.geometry.TriangleMesh, part: int = int(Part.BODY), level: int = 1
) -> Spine:
    """A one-level 'spine' made of any closed open3d mesh, every vertex labelled ``part``."""
    v = np.asarray(mesh.vertices).copy()
    c = v.mean(axis=0)
    vert = VertebraMesh(
        level=level,
        vertices_mm=v,
        faces=np.asarray(mesh.triangles).astype(np.int64),
        part=np.full(len(v), part, dtype=np.uint8),
        centroid_mm=c,
        body_centroid_mm=c,
    )
    return Spine(f"mesh-{level}", {level: vert})


def box_spine(lo, hi, part: int = int(Part.BODY)) -> Spine:
    """A one-level 'spine' made of one axis-aligned box [lo, hi] (mm)."""
    return mesh_spine(_box(tuple(lo), tuple(hi)), part)


@pytest.fixture
def make_box_spine():
    """Factory fixture: ``make_box_spine(lo, hi, part=1)``."""
    return box_spine


@pytest.fixture
def make_sphere_spine():
    """Factory fixture: ``make_sphere_spine(radius_mm, centre)``."""
    return sphere_spine


@pytest.fixture
def make_mesh_spine():
    """Factory fixture: ``make_mesh_spine(open3d_mesh, part=1, level=1)``."""
    return mesh_spine


# --- synthetic B-mode frames ---------------------------------------------------------------

TISSUE = 90.0  # mean grey level of soft tissue
ECHO = 215.0  # grey level of a head-on bone echo
ECHO_PX = 4  # echo length along the beam (0.6 mm at 0.15 mm/px)


def speckle(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Soft-tissue-like background: log-compressed Rayleigh speckle around TISSUE, float.

    Fully developed speckle has a Rayleigh envelope; a scanner shows it in dB, here with
    the simulator's 255 / 55 grey levels per dB (about 26 grey levels of spread).
    """
    rng = np.random.default_rng(seed)
    envelope = rng.rayleigh(1.0, size=shape) / np.sqrt(2.0)  # unit mean square
    return TISSUE + (255.0 / 55.0) * 20.0 * np.log10(envelope + 1e-3)


def frame_with_line(
    rows_of_col: np.ndarray,
    shape: tuple[int, int] = (256, 192),
    shadow: bool = True,
    seed: int = 0,
) -> np.ndarray:
    """uint8 frame: speckle with a bright ECHO_PX-long echo starting at ``rows_of_col[u]``
    in every column u (no echo where the row is negative), black below it if ``shadow``."""
    img = speckle(shape, seed)
    r = np.arange(shape[0])[:, None]
    start = np.asarray(rows_of_col)[None, :]
    has = start >= 0
    echo = has & (r >= start) & (r < start + ECHO_PX)
    img = np.where(echo, ECHO, img)
    if shadow:
        img = np.where(has & (r >= start + ECHO_PX), 0.05 * img, img)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def ridge_spine() -> Spine:
    """A roof-shaped 'bone' (two tilted plates) below the probe, spine frame (LPS, mm):
    its ridge line runs along z at x = 0, y = 0 and the faces slope down at 30 degrees."""
    parts = []
    for sign in (-1.0, 1.0):
        plate = o3d.geometry.TriangleMesh.create_box(30.0, 6.0, 80.0).translate((0, -6.0, -40))
        angle = np.deg2rad(-30.0 * sign)
        rot = o3d.geometry.get_rotation_matrix_from_xyz((0.0, 0.0, angle))
        if sign < 0:
            plate.translate((-30.0, 0, 0))
        plate.rotate(rot, center=(0.0, 0.0, 0.0))
        parts.append(plate)
    mesh = parts[0] + parts[1]
    return mesh_spine(mesh)


@pytest.fixture
def make_line_frame():
    """Factory fixture: ``make_line_frame(rows_of_col, shape=(256, 192), shadow=True, seed=0)``."""
    return frame_with_line


@pytest.fixture
def make_speckle():
    """Factory fixture: ``make_speckle(shape, seed=0)`` -> float speckle background."""
    return speckle
