"""Procedural lumbar spine L1..L5: stacked vertebrae with posture, deterministic by seed.

Spine frame (mm, LPS): origin at the mean of the body centroids, z along the mean
lumbar axis (the vertebrae's mean sagittal tilt is zero), y posterior, x patient left.
Each vertebra is meshed in its own frame (body centre at the origin) and placed with
``frames["T_spine_L<k>"]``; ``frames["T_table_spine"]`` puts the spine on the OR table.

Table frame (mm): origin on the table-top centre line, x across the table towards the
prone patient's left, y up (away from the table top), z along the table towards the
head. A prone patient's posterior points up, so the nominal rotation is the identity.

Posture ranges: prone segmental lordosis L1-2..L4-5 of 3-8 deg each (about 22 deg
L1-L5; prone and supine lordosis is flatter than standing, Been & Kalichman 2014,
Eur Spine J 23:1523), disc heights 9-12 mm (Frobin et al. 1997, Clin Biomech 12 S1),
mild scoliosis with a Cobb angle of 0-15 deg and apical axial rotation of about 0.4x
the Cobb angle (Stokes et al. 1986, Spine 11:213), per-level axial rotation sd 1.5 deg.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
from scipy.spatial.transform import Rotation

from usx_model.sim.phantom.morphometry import REAL_EXTENT_RANGES_MM, sample_spine_morphometry
from usx_model.sim.phantom.types import Spine, VertebraMesh
from usx_model.sim.phantom.vertebra_mesh import MeshOptions, vertebra_mesh

GENERATOR_VERSION = "usx-phantom-1"
#: Mean prone segmental lordosis (deg) of the gaps L1-2, L2-3, L3-4, L4-5.
_SEGMENT_LORDOSIS_DEG = (3.0, 5.0, 6.0, 8.0)
#: Mean disc heights (mm) of the same gaps.
_DISC_HEIGHT_MM = (9.0, 10.0, 11.0, 11.5)
_MAX_ATTEMPTS = 25


def spine_id_for_seed(seed: int) -> str:
    """Stable identifier of the phantom spine generated from ``seed``."""
    return f"phantom-s{seed:06d}"


def generate_spine(
    seed: int,
    *,
    levels: tuple[int, ...] = (1, 2, 3, 4, 5),
    spacing_mm: float = 0.9,
    max_cobb_deg: float = 15.0,
    lordosis_scale: float = 1.0,
    enforce_real_ranges: bool = True,
    at_mean: Collection[str] = (),
) -> Spine:
    """Generate one phantom spine; the same arguments always give identical arrays.

    Args:
        seed: non-negative integer seed of a numpy Generator.
        levels: which of L1..L5 to build (1..5, consecutive or not).
        spacing_mm: marching-cubes grid spacing (smaller = finer, slower).
        max_cobb_deg: upper bound of the uniformly drawn scoliosis Cobb angle.
        lordosis_scale: multiplies the mean segmental lordosis.
        enforce_real_ranges: redraw the patient while any vertebra's bounding box
            (own frame or spine frame) leaves ``REAL_EXTENT_RANGES_MM``.
        at_mean: morphometry parameters set to their mean given the rest of the patient
            (``sample_spine_morphometry``), e.g. those no view shows. The patient is the
            one the seed gives without them (redraws are decided on its true shape), so
            only these parameters differ: an oracle that knows everything else.

    Returns:
        ``Spine`` with meshes in the spine frame, ``params`` (JSON-serialisable
        morphometry and posture) and ``frames`` (``T_table_spine``, ``T_spine_L<k>``).
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"expected a non-negative integer seed, got {seed!r}")
    levels = tuple(sorted(set(levels)))
    if not levels or any(lv not in (1, 2, 3, 4, 5) for lv in levels):
        raise ValueError(f"expected levels within 1..5, got {levels!r}")
    if not 0.0 <= max_cobb_deg <= 45.0:
        raise ValueError(f"expected max_cobb_deg in [0, 45], got {max_cobb_deg}")
    rng = np.random.default_rng(int(seed))
    opts = MeshOptions(spacing_mm)
    attempts = 0
    while True:
        attempts += 1
        # All five levels are always drawn (same random stream), so a subset of levels
        # reproduces the full spine's vertebrae unless a redraw was needed.
        draw_state = rng.bit_generator.state
        factors, morph = sample_spine_morphometry(rng)
        posture = _sample_posture(rng, max_cobb_deg, lordosis_scale)
        local = {lv: vertebra_mesh(morph[lv], lv, opts) for lv in levels}
        placements = _place(local, morph, posture)
        placed = {lv: _transform(local[lv], placements[lv]) for lv in levels}
        if not enforce_real_ranges or all(
            in_real_range(m.vertices_mm) for m in (*local.values(), *placed.values())
        ):
            break
        if attempts == _MAX_ATTEMPTS:
            raise RuntimeError(f"seed {seed}: no spine within real ranges in {attempts} tries")
    if at_mean:
        # The accepted draw again, from its own generator state, with at_mean applied.
        replay = np.random.default_rng()
        replay.bit_generator.state = draw_state
        factors, morph = sample_spine_morphometry(replay, at_mean=at_mean)
        local = {lv: vertebra_mesh(morph[lv], lv, opts) for lv in levels}
        placements = _place(local, morph, posture)
        placed = {lv: _transform(local[lv], placements[lv]) for lv in levels}
    frames = {f"T_spine_L{lv}": placements[lv].tolist() for lv in levels}
    frames["T_table_spine"] = _table_pose(rng).tolist()
    params = {
        "generator": GENERATOR_VERSION,
        "seed": int(seed),
        "attempts": attempts,
        "mesh_spacing_mm": spacing_mm,
        "size_factors": factors,
        "posture": posture,
        "levels": list(levels),
        "morphometry": {f"L{lv}": morph[lv] for lv in levels},
    }
    if at_mean:
        params["at_mean"] = sorted(at_mean)
    return Spine(spine_id_for_seed(int(seed)), placed, params=params, frames=frames)


def in_real_range(vertices_mm: np.ndarray) -> bool:
    """Whether the axis-aligned extents of (V, 3) vertices lie in the real ranges."""
    ext = np.ptp(vertices_mm, axis=0)
    return all(
        lo <= e <= hi for e, (lo, hi) in zip(ext, REAL_EXTENT_RANGES_MM.values(), strict=True)
    )


def _sample_posture(rng: np.random.Generator, max_cobb_deg: float, scale: float) -> dict:
    """Sagittal, coronal and axial posture of the lumbar spine (degrees, mm)."""
    seg = [
        scale * m * float(np.clip(1 + 0.3 * rng.standard_normal(), 0.2, 1.8))
        for m in _SEGMENT_LORDOSIS_DEG
    ]
    disc = [m * float(np.clip(1 + 0.1 * rng.standard_normal(), 0.7, 1.3)) for m in _DISC_HEIGHT_MM]
    cobb = float(rng.uniform(0.0, max_cobb_deg)) * float(rng.choice([-1.0, 1.0]))
    axial = [float(1.5 * rng.standard_normal()) for _ in range(5)]
    return {
        "segment_lordosis_deg": seg,
        "disc_height_mm": disc,
        "cobb_deg": cobb,
        "apical_rotation_deg": 0.4 * cobb,
        "axial_jitter_deg": axial,
    }


def _place(local: dict[int, VertebraMesh], morph: dict, posture: dict) -> dict[int, np.ndarray]:
    """4x4 ``T_spine_vertebra`` per built level; all five are stacked L5 -> L1 upwards."""
    levels = sorted(local)
    all_levels = range(1, 6)
    # Sagittal tilt about +x: positive tips the superior axis anteriorly (L5), and
    # each gap going up removes that gap's lordosis.
    tilt = {5: 0.0}
    for lv in (4, 3, 2, 1):
        tilt[lv] = tilt[lv + 1] - posture["segment_lordosis_deg"][lv - 1]
    mean_tilt = np.mean([tilt[lv] for lv in all_levels])
    # Coronal tilt: linear over L1..L5 so the end plates of L1 and L5 differ by the Cobb angle.
    t = {lv: 1.0 - (lv - 1) / 2.0 for lv in range(1, 6)}  # +1 at L1 .. -1 at L5
    rot = {}
    for lv in all_levels:
        coronal = 0.5 * posture["cobb_deg"] * t[lv]
        axial = (
            posture["apical_rotation_deg"] * (1.0 - abs(t[lv]))
            + posture["axial_jitter_deg"][lv - 1]
        )
        rot[lv] = Rotation.from_euler(
            "yxz", [coronal, tilt[lv] - mean_tilt, axial], degrees=True
        ).as_matrix()
    pos = {max(all_levels): np.zeros(3)}
    for lv in sorted(all_levels, reverse=True)[1:]:
        below = lv + 1
        h_below = morph[below]["body_height_mm"]
        h_here = morph[lv]["body_height_mm"]
        up_mid = _mean_axis(rot[below], rot[lv])
        pos[lv] = (
            pos[below]
            + rot[below] @ [0, 0, h_below / 2]
            + up_mid * posture["disc_height_mm"][lv - 1]
            + rot[lv] @ [0, 0, h_here / 2]
        )
    origin = np.mean([pos[lv] for lv in levels], axis=0)
    out = {}
    for lv in levels:
        t4 = np.eye(4)
        t4[:3, :3] = rot[lv]
        t4[:3, 3] = pos[lv] - origin
        out[lv] = t4
    return out


def _mean_axis(r_a: np.ndarray, r_b: np.ndarray) -> np.ndarray:
    """Unit mean of two frames' superior axes: the direction across the disc between them."""
    v = r_a[:, 2] + r_b[:, 2]
    return v / np.linalg.norm(v)


def _transform(m: VertebraMesh, t: np.ndarray) -> VertebraMesh:
    r, s = t[:3, :3], t[:3, 3]
    return VertebraMesh(
        level=m.level,
        vertices_mm=m.vertices_mm @ r.T + s,
        faces=m.faces,
        part=m.part,
        centroid_mm=r @ m.centroid_mm + s,
        body_centroid_mm=r @ m.body_centroid_mm + s,
    )


def _table_pose(rng: np.random.Generator) -> np.ndarray:
    """Prone patient on the table: small whole-spine rotation (sd 2 deg) and shift.

    Body centres lie ~140 mm above the table top (sd 15 mm), the spine is centred
    across the table within ~10 mm and along it within ~20 mm (sd).
    """
    t = np.eye(4)
    t[:3, :3] = Rotation.from_euler("xyz", 2.0 * rng.standard_normal(3), degrees=True).as_matrix()
    t[:3, 3] = [
        10.0 * rng.standard_normal(),
        140.0 + 15.0 * rng.standard_normal(),
        20.0 * rng.standard_normal(),
    ]
    return t
