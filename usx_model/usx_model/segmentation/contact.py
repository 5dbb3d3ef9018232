"""Probe contact: which columns of a B-mode frame image tissue, and which image air.

A probe that loses its acoustic coupling (lifted, tilted off the skin, an air gap under
one edge) images air: the lens-air interface reflects nearly all energy, so those columns
show a few bright horizontal reverberation lines near the face, at multiples of the lens
thickness, fading into the noise floor within about a centimetre. Below the first
reverberation the column is dark, which the bone segmentation would read as a bright echo
with its acoustic shadow: bone that is not there.

A coupled column instead shows tissue speckle in the first centimetres below the skin.
The test here is that contrast: in the depth band ``band_mm`` under the face, a column is
in contact when at least ``min_signal_fraction`` of its pixels rise above the noise floor
(``signal_level``), whereas reverberation lines fill only their own thin rows. Columns that
are zero from top to bottom lie outside the imaged sector (a linear array narrower than
the frame, a curvilinear fan's corners) and count neither way.

Lumbar bone lies deeper than the band (skin to spinous process tip is >= 15 mm in adults),
so a bone echo and its shadow do not fall inside it; a shallower target needs a shallower
band.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ContactParams:
    """Settings of the contact test (lengths in mm, levels in uint8 grey).

    Attributes:
        depth_mm_per_px: depth spacing of the image rows.
        band_mm: (top, bottom) depth band under the face where tissue speckle is sought.
        signal_level: a pixel brighter than this is signal, not the noise floor.
        min_signal_fraction: share of signal pixels in the band that makes a column coupled.
        min_contact_fraction: a frame with a smaller share of coupled sector columns has
            lost contact and is dropped; in a kept frame the uncoupled columns are masked.
    """

    depth_mm_per_px: float = 0.15
    band_mm: tuple[float, float] = (2.0, 10.0)
    signal_level: int = 15
    min_signal_fraction: float = 0.5
    min_contact_fraction: float = 0.5

    def validate(self) -> None:
        """Raise ValueError on out-of-range settings."""
        if not (np.isfinite(self.depth_mm_per_px) and self.depth_mm_per_px > 0):
            raise ValueError(f"depth_mm_per_px must be > 0, got {self.depth_mm_per_px}")
        top, bottom = self.band_mm
        if not 0 <= top < bottom:
            raise ValueError(
                f"band_mm must be (top, bottom) with 0 <= top < bottom, got {self.band_mm}"
            )
        if not 0 <= self.signal_level < 255:
            raise ValueError(f"signal_level must lie in [0, 255), got {self.signal_level}")
        for name in ("min_signal_fraction", "min_contact_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")


@dataclass(frozen=True)
class Contact:
    """Contact of one frame.

    Attributes:
        columns: (cols,) bool, column images tissue.
        sector: (cols,) bool, column lies inside the imaged sector (not all zero).
        fraction: share of sector columns in contact (0 when no column is in the sector).
        ok: ``fraction >= min_contact_fraction``: the frame is usable.
    """

    columns: np.ndarray
    sector: np.ndarray
    fraction: float
    ok: bool


def probe_contact(image: np.ndarray, params: ContactParams | None = None) -> Contact:
    """Which columns of ``image`` (rows, cols) uint8 image tissue; see the module docstring.

    Raises:
        ValueError: not a 2D uint8 image, or one too shallow for the band.
    """
    p = params or ContactParams()
    p.validate()
    img = np.asarray(image)
    if img.ndim != 2 or img.dtype != np.uint8:
        raise ValueError(f"expected a (rows, cols) uint8 B-mode image, got {img.dtype} {img.shape}")
    r0 = int(np.floor(p.band_mm[0] / p.depth_mm_per_px))
    r1 = int(np.ceil(p.band_mm[1] / p.depth_mm_per_px))
    if r1 > img.shape[0]:
        raise ValueError(
            f"the contact band reaches {p.band_mm[1]} mm = row {r1}, "
            f"the image has {img.shape[0]} rows"
        )
    sector = img.max(axis=0) > 0
    signal = np.mean(img[r0:r1] > p.signal_level, axis=0)
    columns = sector & (signal >= p.min_signal_fraction)
    n_sector = int(sector.sum())
    fraction = float(columns.sum()) / n_sector if n_sector else 0.0
    return Contact(columns, sector, fraction, fraction >= p.min_contact_fraction)
