"""A probe calibration scene: a flat plate at the bottom of a water bath, seen by the probe
on the robot (single-wall calibration, after Prager et al. 1998, "Rapid calibration for 3-D
freehand ultrasound", Ultrasound Med. Biol. 24(6)).

The plate is the plane z = 0 of its frame ``plate``, its normal +z pointing up into the
water. Each scanline that meets the plate returns one echo: an envelope peak at the
plate's range, as strong as the incidence allows (a smooth plate is specular; the
roughened plate a lab uses also scatters some energy back off-axis), a weaker
reverberation at twice the range, and water's noise floor elsewhere. The water is taken
at the scanner's speed of sound (labs warm it or add alcohol to match 1540 m/s; at room
temperature 1480 m/s would stretch every depth by 4 %).

The robot motions: ``spatial_poses`` (stop-and-image poses over the plate: heights,
tilts about both probe axes, turns about the beam, so that every degree of freedom of
the calibration is seen) and ``heave_poses`` (the probe moved up and down along the plate
normal, for the temporal calibration). Lengths in mm, angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from usx_model.base.transforms import make_transform
from usx_model.sim.probe import ProbeModel


@dataclass(frozen=True)
class PlateParams:
    """Acoustic look of the plate scene (dB re a head-on echo of the plate).

    Attributes:
        specular_k: exponent of cos(incidence)^k of the specular part.
        diffuse: share of the echo that does not depend on incidence (a roughened plate).
        pulse_mm: standard deviation of the echo envelope along the beam.
        reverb_db: level of the plate-probe-plate reverberation at twice the range.
        noise_db: water's noise floor.
        dynamic_range_db: displayed dynamic range.
    """

    specular_k: float = 4.0
    diffuse: float = 0.25
    pulse_mm: float = 0.25
    reverb_db: float = -18.0
    noise_db: float = -58.0
    dynamic_range_db: float = 55.0


class PlateScene:
    """Renders B-mode frames of the plate for probe poses in the plate frame.

    Args:
        probe: the transducer and image geometry (rows grow with depth).
        params: acoustic look.
        seed: seed of the noise.
    """

    def __init__(
        self, probe: ProbeModel | None = None, params: PlateParams | None = None, seed: int = 0
    ) -> None:
        self.probe = probe or ProbeModel()
        self.probe.validate()
        self.params = params or PlateParams()
        self._rng = np.random.default_rng(seed)
        self._origins, self._dirs = self.probe.scanlines()
        self._line, self._range = self.probe.pixel_map()

    def ranges_mm(self, T_plate_probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per scanline: range to the plate (inf where it is missed) and cos(incidence)."""
        R, t = T_plate_probe[:3, :3], T_plate_probe[:3, 3]
        o = self._origins @ R.T + t
        d = self._dirs @ R.T
        down = -d[:, 2]  # cos of the angle between the beam and the plate's inward normal
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(down > 1e-6, o[:, 2] / down, np.inf)
        r = np.where((r > 0) & (o[:, 2] > 0), r, np.inf)
        return r, np.clip(down, 0.0, 1.0)

    def render(self, T_plate_probe: np.ndarray) -> np.ndarray:
        """(rows, cols) uint8 frame of the probe at ``T_plate_probe`` (4, 4), mm."""
        p = self.params
        r_line, cos_inc = self.ranges_mm(np.asarray(T_plate_probe, dtype=np.float64))
        amp_line = p.diffuse + (1 - p.diffuse) * cos_inc**p.specular_k
        inside = self._line >= 0
        line = np.where(inside, self._line, 0)
        r = r_line[line]
        amp = amp_line[line]
        rng_px = self._range
        env = amp * np.exp(-0.5 * ((rng_px - r) / p.pulse_mm) ** 2)
        env += amp * 10 ** (p.reverb_db / 20) * np.exp(-0.5 * ((rng_px - 2 * r) / p.pulse_mm) ** 2)
        # beyond the plate only the reverberation returns; water's noise everywhere
        noise = 10 ** (p.noise_db / 20) * self._rng.rayleigh(1.0, env.shape)
        db = 20 * np.log10(np.where(np.isfinite(r), env, 0.0) + noise)
        img = (db + p.dynamic_range_db) * (255.0 / p.dynamic_range_db)
        return np.where(inside, np.clip(img, 0, 255), 0).astype(np.uint8)


def probe_over_plate(
    height_mm: float,
    tilt_x_deg: float = 0.0,
    tilt_y_deg: float = 0.0,
    spin_deg: float = 0.0,
    offset_mm: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """(4, 4) T_plate_probe: the probe face centre ``height_mm`` above the plate point
    ``offset_mm``, the beam pointing down, turned ``spin_deg`` about the plate normal and
    tilted about the probe's own x (lateral) and y (elevation) axes."""
    down = Rotation.from_euler("x", 180.0, degrees=True)
    R = (
        Rotation.from_euler("z", spin_deg, degrees=True)
        * down
        * Rotation.from_euler("xy", [tilt_x_deg, tilt_y_deg], degrees=True)
    )
    return make_transform(R.as_matrix(), [offset_mm[0], offset_mm[1], height_mm])


def spatial_poses(rng: np.random.Generator, n: int = 36) -> np.ndarray:
    """(n, 4, 4) T_plate_probe: heights 20-55 mm, tilts up to 25 deg about either axis,
    turns over 180 deg about the normal (90-270 deg: the iiwa reaches them without
    winding its last joint through its limit), offsets up to 20 mm (Prager's motions)."""
    poses = []
    for k in range(n):
        poses.append(
            probe_over_plate(
                height_mm=rng.uniform(20.0, 55.0),
                tilt_x_deg=rng.uniform(-25.0, 25.0),
                tilt_y_deg=rng.uniform(-25.0, 25.0),
                spin_deg=90.0 + 180.0 * k / max(1, n - 1),
                offset_mm=tuple(rng.uniform(-20.0, 20.0, 2)),
            )
        )
    return np.stack(poses)


def translation_only_poses(rng: np.random.Generator, n: int = 36) -> np.ndarray:
    """(n, 4, 4) poses that only translate a vertical probe: a sweep that cannot
    determine the calibration (tilts and turns are what separate its parameters)."""
    return np.stack(
        [
            probe_over_plate(rng.uniform(20.0, 55.0), offset_mm=tuple(rng.uniform(-20, 20, 2)))
            for _ in range(n)
        ]
    )


def heave_heights_mm(
    t_s: np.ndarray, mean_mm: float = 35.0, amplitude_mm: float = 10.0, hz: float = 1.0
) -> np.ndarray:
    """(N,) probe height over the plate for the temporal calibration's up-and-down motion."""
    return mean_mm + amplitude_mm * np.sin(2 * np.pi * hz * np.asarray(t_s))
