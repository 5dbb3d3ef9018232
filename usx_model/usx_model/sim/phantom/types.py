"""In-memory spine and vertebra objects shared by the phantom, loaders and simulators."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class VertebraMesh:
    """A watertight triangle mesh of one vertebra.

    Attributes:
        level: 1..5 for L1..L5.
        vertices_mm: (V, 3) float64 vertex positions, mm, in the spine's LPS frame.
        faces: (F, 3) int64 vertex indices, counter-clockwise seen from outside
            (outward normals).
        part: (V,) uint8 per-vertex part code (see ``usx_model.base.parts.Part``);
            all zeros when unknown (e.g. a real mesh without labels).
        centroid_mm: (3,) centroid of the vertebra, mm, LPS.
        body_centroid_mm: (3,) centroid of the vertebral body, mm, LPS.
    """

    level: int
    vertices_mm: np.ndarray
    faces: np.ndarray
    part: np.ndarray
    centroid_mm: np.ndarray
    body_centroid_mm: np.ndarray

    @property
    def name(self) -> str:
        return f"L{self.level}"


@dataclass
class Spine:
    """A lumbar spine L1..L5 (or a subset) with its metadata.

    Attributes:
        spine_id: stable identifier, e.g. ``"phantom-s0001"`` or ``"sub-verse004"``.
        vertebrae: level (1..5) -> VertebraMesh, all in one LPS frame, mm.
        params: generator parameters (JSON-serialisable), empty for real spines.
        frames: named 4x4 transforms ``T_parent_child`` (JSON-serialisable lists),
            e.g. ``"T_table_spine"`` placing the spine on the OR table.
    """

    spine_id: str
    vertebrae: dict[int, VertebraMesh]
    params: dict = field(default_factory=dict)
    frames: dict = field(default_factory=dict)

    @property
    def levels(self) -> list[int]:
        return sorted(self.vertebrae)
