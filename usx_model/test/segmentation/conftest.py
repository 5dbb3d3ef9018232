"""Synthetic B-mode frames with analytic answers, and tiny one-mesh 'spines'."""

from __future__ import annotations

import numpy as np
import open3d as o3d
import pytest

from usx_model.phantom.parts import Part
from usx_model.phantom.types import Spine, VertebraMesh

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


def mesh_spine(mesh: o3d.geometry.TriangleMesh) -> Spine:
    """A one-level 'spine' made of one closed open3d mesh."""
    v = np.asarray(mesh.vertices).copy()
    vert = VertebraMesh(
        level=1,
        vertices_mm=v,
        faces=np.asarray(mesh.triangles).astype(np.int64),
        part=np.full(len(v), int(Part.BODY), dtype=np.uint8),
        centroid_mm=v.mean(axis=0),
        body_centroid_mm=v.mean(axis=0),
    )
    return Spine("mesh", {1: vert})


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
