"""What goes wrong in a real lab, simulated: breathing, a patient who moved after the
X-ray, a wrong probe calibration, a clock offset between images and joint states, lost
probe contact.

``ChainConditions`` names them (the flags of ``usx pipeline``); the functions here turn one
into what the simulation needs: a displacement over time, a rigid error, a perturbed
calibration. Lengths in mm, angles in degrees, times in seconds unless named otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from usx_model.base.transforms import make_transform, perturbation
from usx_model.sim.contact_loss import air_columns, apply_air_gap, contact_loss_schedule
from usx_model.tracking.calibration import ImageCalibration, ProbeCalibration


@dataclass(frozen=True)
class ChainConditions:
    """Disturbances of the geometric chain (all zero: the ideal lab).

    Attributes:
        breathing_mm: peak-to-peak antero-posterior excursion of the prone patient's spine
            (2-4 mm is typical).
        breathing_hz: breathing rate (0.2-0.3 Hz).
        xray_shift_mm, xray_shift_deg: rigid motion of the patient between the X-ray and
            the sweep: a translation of exactly this length in a random direction and a
            rotation of exactly this angle about a random axis through the lumbar centre.
        calib_error_mm, calib_error_deg: the same for the probe calibration the
            compounding uses, against the one the probe is mounted with (in the probe
            frame, about the probe face centre).
        time_offset_ms: the images are stamped this much earlier than they were
            acquired, relative to the joint states (the compounding's ``temporal_offset``
            that undoes it is ``+time_offset_ms``).
        contact_loss_frac: share of the frames taken while the probe was partly or wholly
            off the skin (``sim.contact_loss``).
    """

    breathing_mm: float = 0.0
    breathing_hz: float = 0.25
    xray_shift_mm: float = 0.0
    xray_shift_deg: float = 0.0
    calib_error_mm: float = 0.0
    calib_error_deg: float = 0.0
    time_offset_ms: float = 0.0
    contact_loss_frac: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value}")
        for name in (
            "breathing_mm",
            "xray_shift_mm",
            "xray_shift_deg",
            "calib_error_mm",
            "calib_error_deg",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.05 <= self.breathing_hz <= 2.0:
            raise ValueError(f"breathing_hz must lie in [0.05, 2], got {self.breathing_hz}")
        if not 0 <= self.contact_loss_frac <= 0.9:
            raise ValueError(
                f"contact_loss_frac must lie in [0, 0.9], got {self.contact_loss_frac}"
            )

    def as_dict(self) -> dict:
        return asdict(self)


def condition_rng(seed: int, name: str) -> np.random.Generator:
    """An independent stream per disturbance, so adding one leaves the others' draws."""
    return np.random.default_rng([int(seed), sum(name.encode())])


def breathing_displacement_mm(
    t_s: np.ndarray, peak_to_peak_mm: float, hz: float, phase_rad: float = 0.0
) -> np.ndarray:
    """(N,) displacement along the patient's posterior axis at times ``t_s``.

    ``d(t) = (A / 2) sin(2 pi f t + phase)``: zero mean, so the spine at rest is the mean
    position (where the X-ray and the ground truth are).
    """
    return 0.5 * peak_to_peak_mm * np.sin(2 * np.pi * hz * np.asarray(t_s) + phase_rad)


def translation(offset_mm: np.ndarray) -> np.ndarray:
    """(4, 4) pure translation."""
    return make_transform(np.eye(3), np.asarray(offset_mm, dtype=np.float64))


def calibration_error(rng: np.random.Generator, trans_mm: float, rot_deg: float) -> np.ndarray:
    """(4, 4) rigid error about the probe-frame origin: ``T_ee_probe_used = T_ee_probe @ E``."""
    return perturbation(rng, np.zeros(3), rot_deg, trans_mm)


def perturbed_calibration(
    truth: ProbeCalibration,
    rng: np.random.Generator,
    trans_mm: float,
    rot_deg: float,
    spacing_pct: float = 0.0,
) -> ProbeCalibration:
    """``truth`` with a hand-eye error (``calibration_error``) and each pixel spacing off
    by ``spacing_pct`` with a random sign; origin, ``T_probe_image`` and clock offset kept."""
    error = calibration_error(rng, trans_mm, rot_deg)
    signs = rng.choice([-1.0, 1.0], 2)
    spacing = np.asarray(truth.image.spacing_mm) * (1 + signs * spacing_pct / 100)
    return ProbeCalibration(
        ImageCalibration(tuple(float(v) for v in spacing), truth.image.origin_px),
        truth.T_ee_probe @ error,
        truth.T_probe_image,
        truth.temporal_offset_ms,
    )


@dataclass(frozen=True)
class FrameDisturbances:
    """Per-frame breathing and lost contact of one sweep.

    Attributes:
        breathing_mm: (F,) spine displacement along its posterior axis (zeros: still).
        air_share: (F,) signed uncoupled share of the aperture (``contact_loss``).
        rng: the contact-loss stream after the schedule was drawn (for the air noise).
    """

    breathing_mm: np.ndarray
    air_share: np.ndarray
    rng: np.random.Generator

    def probe_pose(self, k: int, T_spine_probe: np.ndarray) -> np.ndarray:
        """(4, 4) the probe of frame ``k`` in the breathing spine: the spine rises by d
        along its posterior axis (y), so the planned probe sits d lower in it."""
        d = float(self.breathing_mm[k])
        return T_spine_probe if d == 0 else translation([0.0, -d, 0.0]) @ T_spine_probe

    def lift_probe(
        self, k: int, image: np.ndarray, depth_mm_per_px: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Frame ``k``'s image with its air columns, and those columns (None: coupled)."""
        share = self.air_share[k]
        if share == 0:
            return image, None
        air = air_columns(share, image.max(axis=0) > 0)
        return apply_air_gap(image, air, depth_mm_per_px, rng), air


def frame_disturbances(
    frame_times_ns: np.ndarray, cond: ChainConditions, seed: int
) -> FrameDisturbances:
    """The breathing (random phase) and lost-contact schedule of a sweep's frames."""
    t_s = np.asarray(frame_times_ns) * 1e-9
    phase = condition_rng(seed, "breathing").uniform(0, 2 * np.pi)
    d = breathing_displacement_mm(t_s, cond.breathing_mm, cond.breathing_hz, phase)
    rng = condition_rng(seed, "contact_loss")
    share = contact_loss_schedule(len(t_s), cond.contact_loss_frac, rng)
    return FrameDisturbances(d, share, rng)
