"""Sampling of lumbar vertebra morphometry (L1..L5) for the procedural phantom.

Every length is in millimetres, every angle in degrees. Level means (L1..L5) and
spreads are rounded from published cadaver and CT morphometry:

- Body end-plate width/depth, body heights, canal width/depth, spinous process
  length, transverse process span: Panjabi et al. 1992, "Human lumbar vertebrae:
  quantitative three-dimensional anatomy", Spine 17(3):299-306 (Tables 1-3), and
  Zhou et al. 2000, "Geometrical dimensions of the lumbar vertebrae - analysis of data
  from digitised CT images", Eur Spine J 9:242-248 (body widths 40-50 mm L1->L5,
  depths 33-37 mm, posterior heights 24-27 mm; L5 anterior > posterior height).
- Pedicle width, height and transverse angle: Zindrick et al. 1987, "Analysis of the
  morphometric characteristics of the thoracic and lumbar pedicles", Spine 12(2):160-166
  (width 8.7 -> 18 mm, height 15.4 -> 14 mm, angle 11 -> 30 deg L1 -> L5).
- Lamina thickness/height: Zhou et al. 2000 (lamina thickness 5-7 mm) and Panjabi 1992.
- Facet orientation (transverse angle to the sagittal plane): Panjabi et al. 1993,
  "Articular facets of the human spine", Spine 18(10):1298-1310, and Masharawi et al.
  2004, Spine 29(16):1755-1763 (about 26 deg at L1-2 up to 45-50 deg at L5).
- End-plate concavity 1-2.5 mm: van der Houwen et al. 2010, J Biomech 43:1224-1230.
- Whole-vertebra extents of real L1s (VerSe CT, ten subjects): 61-82 x 72-93 x
  46-61 mm (LR x AP x CC); the transverse span grows to ~90-100 mm at L3-L5.

Correlations: every length is scaled by a per-patient size factor (coefficient of
variation ~6 %, a typical adult height spread), but the body has its own factor that
correlates only ~0.5 with the arch's, so the posterior elements seen by ultrasound
predict the body size only partly (the reason the X-ray channel is needed at all).
Individual parameters add their own independent noise, and each level repeats the
patient's deviation from the level mean with a small per-level jitter.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

#: name -> (L1..L5 means, relative sd of the independent per-parameter noise,
#:          scaling: "body", "arch" or None for angles/ratios).
_TABLE: dict[str, tuple[tuple[float, ...], float, str | None]] = {
    # Vertebral body (Panjabi 1992; Zhou 2000).
    "body_width_mm": ((43.0, 45.0, 47.5, 49.5, 51.5), 0.05, "body"),
    "body_depth_mm": ((32.0, 33.5, 34.5, 35.0, 34.5), 0.05, "body"),
    "body_height_mm": ((25.0, 26.0, 26.5, 26.0, 25.0), 0.05, "body"),
    "body_wedge_mm": ((-1.5, -0.5, 0.3, 1.2, 3.0), 0.0, None),
    "endplate_concavity_mm": ((1.6, 1.7, 1.8, 1.8, 1.7), 0.2, None),
    "body_waist": ((0.07, 0.07, 0.07, 0.07, 0.07), 0.25, None),
    # Pedicles (Zindrick 1987).
    "pedicle_width_mm": ((8.0, 8.7, 10.0, 12.0, 15.0), 0.12, "arch"),
    "pedicle_height_mm": ((14.5, 14.2, 14.0, 13.5, 13.0), 0.08, "arch"),
    "pedicle_angle_deg": ((11.0, 12.0, 14.0, 18.0, 28.0), 0.15, None),
    "pedicle_length_mm": ((9.0, 9.0, 8.5, 8.0, 7.5), 0.12, "arch"),
    # Canal (Panjabi 1992).
    "canal_width_mm": ((22.0, 22.5, 23.0, 23.5, 25.5), 0.07, "arch"),
    "canal_depth_mm": ((17.5, 17.0, 16.5, 16.5, 17.0), 0.08, "arch"),
    # Lamina (Zhou 2000).
    "lamina_thickness_mm": ((6.0, 6.0, 6.2, 6.4, 6.6), 0.12, "arch"),
    "lamina_height_mm": ((23.0, 23.5, 23.0, 22.5, 21.5), 0.05, "arch"),
    # Spinous process (Panjabi 1992: length from the canal to the tip).
    "spinous_length_mm": ((31.0, 31.5, 31.0, 30.0, 29.0), 0.08, "arch"),
    "spinous_height_mm": ((18.0, 19.0, 19.5, 18.0, 15.0), 0.1, "arch"),
    "spinous_thickness_mm": ((7.0, 7.0, 7.5, 7.5, 8.0), 0.12, "arch"),
    "spinous_tilt_deg": ((18.0, 15.0, 12.0, 9.0, 5.0), 0.3, None),
    # Transverse processes (Panjabi 1992, tip-to-tip span).
    "transverse_span_mm": ((72.0, 80.0, 88.0, 86.0, 90.0), 0.07, "arch"),
    "transverse_tilt_deg": ((5.0, 3.0, 2.0, 4.0, 12.0), 0.5, None),
    "transverse_sweep_deg": ((10.0, 8.0, 6.0, 8.0, 12.0), 0.5, None),
    "transverse_thickness_mm": ((6.0, 6.0, 6.5, 7.0, 9.5), 0.12, "arch"),
    # Articular processes (Panjabi 1993; Masharawi 2004).
    "facet_angle_deg": ((28.0, 30.0, 35.0, 42.0, 48.0), 0.15, None),
    "sap_height_mm": ((18.0, 18.5, 18.5, 18.0, 18.0), 0.05, "arch"),
    "iap_height_mm": ((18.0, 18.0, 18.0, 18.0, 18.0), 0.05, "arch"),
    "facet_width_mm": ((13.0, 13.5, 14.0, 15.0, 16.0), 0.1, "arch"),
}

#: Names of all sampled parameters, in a stable order.
PARAMETER_NAMES: tuple[str, ...] = tuple(_TABLE)

#: Coefficient of variation of the per-patient size factors.
SIZE_CV = 0.06
#: Correlation of the body's size factor with the arch's (posterior elements).
BODY_ARCH_CORRELATION = 0.5
#: Relative per-level jitter added on top of a patient's systematic deviation.
LEVEL_JITTER = 0.35
#: Standard-normal draws are truncated here: beyond ~2.2 sd the combined tails would
#: leave the range of real vertebrae (see ``REAL_EXTENT_RANGES_MM``).
TRUNCATE_SD = 2.2

#: Whole-vertebra bounding-box ranges of real lumbar vertebrae (the project's acceptance
#: ranges, from VerSe CT L1-L5; axis-aligned boxes in scanner LPS, so they include the
#: vertebrae's natural tilt): axis -> (min, max) mm for x (left-right),
#: y (antero-posterior), z (cranio-caudal).
REAL_EXTENT_RANGES_MM: dict[str, tuple[float, float]] = {
    "x": (53.0, 116.0),
    "y": (72.0, 98.0),
    "z": (44.0, 61.0),
}


def level_means(level: int) -> dict[str, float]:
    """Population mean of every parameter at ``level`` (1..5 for L1..L5)."""
    _check_level(level)
    return {name: means[level - 1] for name, (means, _, _) in _TABLE.items()}


def sample_patient_factors(rng: np.random.Generator) -> dict[str, float]:
    """Draw a patient's size factors (dimensionless, around 1).

    Returns:
        ``arch`` and ``body`` size factors with correlation ``BODY_ARCH_CORRELATION``.
    """
    z_arch, z_body = _normal(rng, 2)
    rho = BODY_ARCH_CORRELATION
    return {
        "arch": float(1.0 + SIZE_CV * z_arch),
        "body": float(1.0 + SIZE_CV * (rho * z_arch + np.sqrt(1.0 - rho**2) * z_body)),
    }


def sample_spine_morphometry(
    rng: np.random.Generator,
    levels: tuple[int, ...] = (1, 2, 3, 4, 5),
    at_mean: Collection[str] = (),
) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """Sample one patient's morphometry for the given levels.

    Each parameter's patient deviation (standard normal ``z``) is drawn once and
    repeated at every level with ``LEVEL_JITTER`` of fresh noise, so the L1 -> L5
    trends of the level means survive within one spine.

    Args:
        rng: numpy Generator (the only source of randomness; same state -> same result).
        levels: levels to sample, each in 1..5.
        at_mean: parameters that lose their own noise (``z`` = 0) and keep only the
            patient's size factor: their mean given everything else about the patient.
            The same draws are made, so every other parameter is unchanged.

    Returns:
        (patient factors, level -> parameter dict); all values are plain floats.
    """
    for level in levels:
        _check_level(level)
    check_parameter_names(at_mean, "at_mean")
    factors = sample_patient_factors(rng)
    z_patient = _normal(rng, len(_TABLE))
    z_levels = _normal(rng, (5, len(_TABLE)))
    out: dict[int, dict[str, float]] = {}
    for level in levels:
        z = (z_patient + LEVEL_JITTER * z_levels[level - 1]) / np.sqrt(1.0 + LEVEL_JITTER**2)
        z[[i for i, name in enumerate(_TABLE) if name in at_mean]] = 0.0
        params = {}
        for i, (name, (means, rel_sd, scaling)) in enumerate(_TABLE.items()):
            mean = means[level - 1]
            if scaling is None:
                # Angles/ratios: additive noise with the relative sd of a typical value.
                typical = max(abs(m) for m in means)
                value = mean + rel_sd * typical * z[i]
            else:
                value = mean * factors[scaling] * (1.0 + rel_sd * z[i])
            params[name] = float(value)
        out[level] = _clip(params)
    return factors, out


def check_parameter_names(names: Collection[str], what: str) -> None:
    """ValueError naming ``what`` unless every name is in ``PARAMETER_NAMES``."""
    unknown = sorted(set(names) - set(_TABLE))
    if unknown:
        raise ValueError(
            f"{what}: unknown parameters {unknown}; expected names from "
            f"{', '.join(PARAMETER_NAMES)}"
        )


def _clip(params: dict[str, float]) -> dict[str, float]:
    """Keep every parameter in an anatomically possible range (tails of the normal)."""
    p = dict(params)
    for name, value in p.items():
        if name.endswith("_mm") and name not in ("body_wedge_mm",):
            p[name] = max(value, 2.0)
    p["endplate_concavity_mm"] = min(max(p["endplate_concavity_mm"], 0.5), 3.0)
    p["body_waist"] = min(max(p["body_waist"], 0.0), 0.15)
    p["pedicle_angle_deg"] = min(max(p["pedicle_angle_deg"], 3.0), 40.0)
    p["facet_angle_deg"] = min(max(p["facet_angle_deg"], 10.0), 70.0)
    p["spinous_tilt_deg"] = min(max(p["spinous_tilt_deg"], -5.0), 35.0)
    p["transverse_tilt_deg"] = min(max(p["transverse_tilt_deg"], -10.0), 30.0)
    p["transverse_sweep_deg"] = min(max(p["transverse_sweep_deg"], -5.0), 30.0)
    # The pedicles must not be wider than the body allows.
    p["pedicle_width_mm"] = min(p["pedicle_width_mm"], 0.35 * p["body_width_mm"])
    return p


def _normal(rng: np.random.Generator, shape) -> np.ndarray:
    """Standard normal draws clipped at +-TRUNCATE_SD (same number of draws always)."""
    return np.clip(rng.standard_normal(shape), -TRUNCATE_SD, TRUNCATE_SD)


def _check_level(level: int) -> None:
    if level not in (1, 2, 3, 4, 5):
        raise ValueError(f"expected a lumbar level 1..5, got {level!r}")
