"""Lost probe contact, simulated: air-gap columns in B-mode frames, and when they happen.

A lifted or tilted probe images air under part or all of its face. An air column shows
reverberation lines between the lens and the air interface: bright horizontal lines at
multiples of the lens thickness, each some dB weaker than the last, over the electronic
noise floor. The level scale is the B-mode simulator's (0 dB = a head-on bone echo, log
compression to ``dynamic_range_db``).

A loss of contact lasts a run of frames: the probe tilts off one edge (the uncoupled share
of the aperture grows), stays off, and comes back the same way.
"""

from __future__ import annotations

import numpy as np

#: lens thickness = spacing of the reverberation lines, mm
LENS_MM = 1.1
#: first reverberation line level (dB re a head-on bone echo) and loss per further line
REVERB_DB = -3.0
REVERB_STEP_DB = 5.0
#: thickness of one reverberation line, mm
LINE_MM = 0.3
#: electronic noise floor, dB
NOISE_DB = -62.0


def air_column_db(rows: int, depth_mm_per_px: float) -> np.ndarray:
    """(rows,) level in dB of an air column: reverberation lines over the noise floor."""
    depth = (np.arange(rows) + 0.5) * depth_mm_per_px
    k = np.rint(depth / LENS_MM)
    on_line = (k >= 1) & (np.abs(depth - k * LENS_MM) <= LINE_MM / 2)
    line_db = REVERB_DB - REVERB_STEP_DB * (k - 1)
    return np.where(on_line, np.maximum(line_db, NOISE_DB), NOISE_DB)


def apply_air_gap(
    image: np.ndarray,
    air_columns: np.ndarray,
    depth_mm_per_px: float,
    rng: np.random.Generator,
    dynamic_range_db: float = 55.0,
) -> np.ndarray:
    """Replace the in-sector ``air_columns`` (cols,) bool of a uint8 frame with air.

    Columns that are zero throughout (outside the sector) stay zero. Returns a new image.
    """
    img = np.array(image, dtype=np.uint8, copy=True)
    cols = np.flatnonzero(np.asarray(air_columns, dtype=bool) & (img.max(axis=0) > 0))
    if len(cols) == 0:
        return img
    rows = img.shape[0]
    db = air_column_db(rows, depth_mm_per_px)[:, None] + rng.normal(0.0, 2.0, (rows, len(cols)))
    grey = np.clip((db + dynamic_range_db) * (255.0 / dynamic_range_db), 0, 255)
    img[:, cols] = grey.astype(np.uint8)
    return img


def contact_loss_schedule(
    n_frames: int,
    fraction: float,
    rng: np.random.Generator,
    run_frames: tuple[int, int] = (10, 40),
    ramp_frames: int = 3,
) -> np.ndarray:
    """(n_frames,) signed uncoupled share of the aperture per frame, in [-1, 1].

    0 = full contact; +a = the share a of the aperture from the right edge is in air, -a
    from the left edge (|a| = 1: the probe is off the skin). Runs of ``run_frames`` frames
    (uniform) are placed without overlap until ``fraction`` of the frames lie in one;
    within a run the share ramps from 0.4 to 1 over ``ramp_frames`` frames, and back.

    Raises:
        ValueError: a fraction outside [0, 0.9] or a bad run length.
    """
    if not 0.0 <= fraction <= 0.9:
        raise ValueError(f"expected a contact loss fraction in [0, 0.9], got {fraction}")
    lo, hi = run_frames
    if not 1 <= lo <= hi:
        raise ValueError(f"expected run_frames (lo, hi) with 1 <= lo <= hi, got {run_frames}")
    share = np.zeros(n_frames)
    target = round(fraction * n_frames)
    free = np.ones(n_frames, dtype=bool)
    tries = 0
    while int((share != 0).sum()) < target and tries < 10000:
        tries += 1
        length = min(int(rng.integers(lo, hi + 1)), target - int((share != 0).sum()))
        start = int(rng.integers(0, max(1, n_frames - length + 1)))
        # keep one coupled frame between runs so that every run is its own event
        if not free[max(0, start - 1) : start + length + 1].all():
            continue
        ramp = np.minimum(np.arange(length), np.arange(length)[::-1])
        a = np.minimum(1.0, 0.4 + 0.6 * ramp / max(1, ramp_frames))
        share[start : start + length] = a * (1 if rng.random() < 0.5 else -1)
        free[start : start + length] = False
    return share


def air_columns(share: float, sector: np.ndarray) -> np.ndarray:
    """(cols,) bool air columns of a frame with signed uncoupled share ``share``.

    ``sector``: (cols,) bool columns inside the imaged sector; the share counts those.
    """
    sector_cols = np.flatnonzero(np.asarray(sector, dtype=bool))
    n = round(abs(share) * len(sector_cols))
    mask = np.zeros(len(sector), dtype=bool)
    if n:
        mask[sector_cols[-n:] if share > 0 else sector_cols[:n]] = True
    return mask
