"""Anatomical part codes of a vertebra, shared by meshes, datasets and metrics.

The codes are a stable contract: they are written into PLY files (uchar vertex
property ``part``) and into dataset HDF5 files (``gt_part``).
"""

from __future__ import annotations

import enum


class Part(enum.IntEnum):
    """Per-vertex anatomical part label of a lumbar vertebra."""

    BODY = 1
    PEDICLE = 2
    LAMINA = 3
    SPINOUS = 4
    TRANSVERSE = 5
    SUPERIOR_ARTICULAR = 6
    INFERIOR_ARTICULAR = 7


#: Parts that belong to the posterior arch (everything but the body).
ARCH_PARTS: tuple[Part, ...] = tuple(p for p in Part if p is not Part.BODY)

#: Posterior elements that spine ultrasound typically sees.
POSTERIOR_VISIBLE_PARTS: tuple[Part, ...] = (Part.SPINOUS, Part.LAMINA, Part.TRANSVERSE)

LEVEL_NAMES: tuple[str, ...] = ("L1", "L2", "L3", "L4", "L5")

#: VerSe label values of the lumbar levels L1..L5.
VERSE_LABELS: dict[int, int] = {20: 1, 21: 2, 22: 3, 23: 4, 24: 5}
