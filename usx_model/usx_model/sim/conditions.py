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
