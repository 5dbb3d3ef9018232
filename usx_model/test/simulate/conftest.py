"""Fixtures for the simulator tests: a toy box-and-cylinder lumbar spine with part labels.

The toy vertebra is built from disjoint closed primitives (so line integrals through it
are exact): an elliptic-cylinder body, two pedicles, a lamina, a spinous process and two
transverse processes, in the LPS frame (y posterior), levels stacked along z.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from usx_model.phantom.parts import Part
from usx_model.phantom.types import Spine, VertebraMesh

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
