"""The phantom node's world: spine, table, robot sweep plan, B-mode frames, X-ray, truth.

ROS-free: the phantom node (``usx_ros.sim.phantom``) declares the parameters, calls
:func:`build_scenario` in a worker thread (planning, meshing and the X-ray take seconds)
and turns the result into messages. Everything is in the robot base frame
(``lbr_link_0``) unless a name says otherwise; lengths in mm.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from usx_model.base.transforms import apply_transform, transform_from_xyz_rpy
from usx_model.base.xray_geometry import XrayGeometry, transform_geometry
from usx_model.sim.bmode import BModeSimulator
from usx_model.sim.conditions import ChainConditions, FrameDisturbances, frame_disturbances
from usx_model.sim.phantom.spine import generate_spine
from usx_model.sim.phantom.types import Spine
from usx_model.sim.phantom.verse import load_verse_spine
from usx_model.sim.probe import ProbeKind, ProbeModel
from usx_model.sim.robot_sweep import (
    DEFAULT_TABLE_RPY_DEG,
    DEFAULT_TABLE_XYZ_MM,
    SERPENTINE_OFFSETS_MM,
    RobotSweep,
    plan_robot_sweep,
)
from usx_model.sim.scene import sample_surface
from usx_model.sim.xray import body_midplane_point_mm, lateral_geometry, render_lateral_xray
from usx_model.tracking.calibration import (
    ImageCalibration,
    ProbeCalibration,
    load_probe_calibration,
)


@dataclass(frozen=True)
class ScenarioConfig:
    """What the phantom simulates; field names are the phantom node's parameter names.

    ``verse_mask`` and ``verse_centroids`` (VerSe label volume and its centroid JSON, both
    or neither) replace the generated spine of ``spine_seed``. ``table_*`` is T_base_table
    as URDF xyz (mm) + rpy (deg). ``calibration`` is the probe calibration (hand-eye
    T_ee_probe, pixel spacing); None = the shipped config/probe.yaml; see
    :func:`simulated_calibration` for what the simulator can render. ``n_frames`` 0 lets
    ``sweep_speed_mm_s`` set the frame count. ``seed`` seeds the speckle.
    ``breathing_mm``/``breathing_hz`` (peak-to-peak antero-posterior motion of the spine
    under the probe) and ``contact_loss_frac`` (share of frames with the probe partly or
    wholly off the skin) are the lab conditions of ``sim.conditions``.
    """

    spine_seed: int = 0
    verse_mask: str = ""
    verse_centroids: str = ""
    table_xyz_mm: tuple[float, ...] = DEFAULT_TABLE_XYZ_MM
    table_rpy_deg: tuple[float, ...] = DEFAULT_TABLE_RPY_DEG
    joint_rate_hz: float = 100.0
    frame_rate_hz: float = 30.0
    sweep_speed_mm_s: float = 10.0
    n_frames: int = 0
    lateral_offsets_mm: tuple[float, ...] = SERPENTINE_OFFSETS_MM
    standoff_mm: float = 20.0
    probe_kind: str = "linear"
    rows: int = 512
    cols: int = 512
    width_mm: float = 60.0
    radius_mm: float = 50.0
    fan_angle_deg: float = 60.0
    seed: int = 0
    publish_xray: bool = True
    xray_depth_registered: bool = True
    xray_pixel_mm: float = 0.5
    ground_truth_points_per_level: int = 8192
    breathing_mm: float = 0.0
    breathing_hz: float = 0.25
    contact_loss_frac: float = 0.0
    calibration: ProbeCalibration | None = None

    @classmethod
    def from_params(cls, params: object, calibration: ProbeCalibration) -> ScenarioConfig:
        """The fields read by name from a parameter object (other attributes ignored)."""
        picked = {f.name: getattr(params, f.name) for f in fields(cls) if hasattr(params, f.name)}
        return cls(**{**picked, "calibration": calibration})


def simulated_calibration(cfg: ScenarioConfig) -> ProbeCalibration:
    """The probe calibration the simulator renders with (the shipped one if unset).

    The B-mode simulator draws square pixels, with the image origin at the probe face
    centre of a ``cols``-wide image and the image in the probe's x-z plane (the default
    ``T_probe_image``); the hand-eye ``T_ee_probe`` may be anything.

    Raises:
        ValueError: a calibration the simulator cannot render (says which part).
    """
    cal = cfg.calibration if cfg.calibration is not None else load_probe_calibration()
    su, sv = cal.image.spacing_mm
    if not np.isclose(su, sv, rtol=1e-9):
        raise ValueError(
            f"the B-mode simulator draws square pixels: expected equal spacing_mm, got {su}, {sv}"
        )
    face = ImageCalibration.centred_on_face(cfg.cols, (su, sv)).origin_px
    if not np.allclose(cal.image.origin_px, face):
        raise ValueError(
            f"the B-mode simulator puts the image origin at the probe face centre of a "
            f"{cfg.cols}-column image, {face}: got origin_px {cal.image.origin_px}"
        )
    if not np.allclose(cal.T_probe_image, ProbeCalibration(cal.image).T_probe_image):
        raise ValueError(
            "the B-mode simulator images in the probe's x-z plane: expected the default "
            "T_probe_image (xyz 0, rpy (90, 0, 0) deg)"
        )
    return cal


def probe_model(cfg: ScenarioConfig) -> ProbeModel:
    """The simulated transducer; pixel spacing from the probe calibration.

    Raises:
        ValueError: see :func:`simulated_calibration`.
    """
    return ProbeModel(
        kind=ProbeKind(cfg.probe_kind),
        shape=(cfg.rows, cfg.cols),
        pixel_mm=simulated_calibration(cfg).image.spacing_mm[0],
        width_mm=cfg.width_mm,
        radius_mm=cfg.radius_mm,
        fan_angle_deg=cfg.fan_angle_deg,
    )


@dataclass(frozen=True)
class LateralXray:
    """The lateral X-ray shot, ready for ``XrayView``.

    Attributes:
        geometry: the shot's geometry in the base frame, mm.
        image: (rows, cols) uint16 DRR, bone bright.
        label: (rows, cols) uint8 body silhouettes, 0 background, level 1..5 (all 0 when
            the spine has no part codes, see ``labelled``).
        plane_point_mm: (3,) a point of the body mid-plane in the base frame (the depth a
            CBCT registration gives), or None when the depth is unknown.
        labelled: whether the spine had part codes (else the label image is empty).
    """

    geometry: XrayGeometry
    image: np.ndarray
    label: np.ndarray
    plane_point_mm: np.ndarray | None
    labelled: bool


@dataclass(frozen=True)
class GroundTruth:
    """Dense surface samples of every vertebra.

    Attributes:
        points_mm: (N, 3) float, base frame, mm.
        level: (N,) uint8 level of each point.
        part: (N,) uint8 part code of each point.
    """

    points_mm: np.ndarray
    level: np.ndarray
    part: np.ndarray


@dataclass(frozen=True)
class Scenario:
    """A planned phantom sweep and everything published once at its start."""

    spine: Spine
    plan: RobotSweep
    sim: BModeSimulator
    xray: LateralXray | None
    truth: GroundTruth
    disturbed: FrameDisturbances | None = None
    seed: int = 0

    def render(self, k: int) -> np.ndarray:
        """(rows, cols) uint8 B-mode image of plan frame ``k`` (breathing and lost contact
        applied when the scenario has them)."""
        T = self.plan.T_spine_probe[k]
        if self.disturbed is None:
            return self.sim.render(T).image
        image = self.sim.render(self.disturbed.probe_pose(k, T)).image
        # frames render ahead on another thread, in any order: a stream per frame
        rng = np.random.default_rng([self.seed, k])
        return self.disturbed.lift_probe(k, image, self.sim.probe.pixel_mm, rng)[0]


def load_spine(cfg: ScenarioConfig) -> Spine:
    """The VerSe spine when ``verse_mask`` is set, else the generated one."""
    if cfg.verse_mask:
        return load_verse_spine(cfg.verse_mask, cfg.verse_centroids)
    return generate_spine(cfg.spine_seed)


def plan_sweep(spine: Spine, cfg: ScenarioConfig) -> RobotSweep:
    """The robot sweep over ``spine`` lying on the table."""
    return plan_robot_sweep(
        spine,
        transform_from_xyz_rpy(cfg.table_xyz_mm, cfg.table_rpy_deg),
        simulated_calibration(cfg).T_ee_probe,
        sweep_speed_mm_s=cfg.sweep_speed_mm_s,
        frame_rate_hz=cfg.frame_rate_hz,
        joint_rate_hz=cfg.joint_rate_hz,
        n_frames=cfg.n_frames or None,
        standoff_mm=cfg.standoff_mm,
        lateral_offsets_mm=tuple(cfg.lateral_offsets_mm),
    )


def lateral_xray(
    spine: Spine, plan: RobotSweep, sim: BModeSimulator, cfg: ScenarioConfig
) -> LateralXray:
    """The lateral X-ray of ``spine`` in the base frame (reuses the simulator's scene)."""
    geometry = lateral_geometry(spine, pixel_mm=cfg.xray_pixel_mm)
    labelled = all(np.any(v.part == 1) for v in spine.vertebrae.values())
    shot = render_lateral_xray(spine, geometry, scene=sim.scene, labels=labelled)
    plane = None
    if cfg.xray_depth_registered:  # as if a CBCT had registered the depth
        plane = apply_transform(plan.T_base_spine, body_midplane_point_mm(spine)[None])[0]
    geometry_base = transform_geometry(geometry, plan.T_base_spine)
    return LateralXray(geometry_base, shot.image, shot.label, plane, labelled)


def ground_truth(spine: Spine, plan: RobotSweep, n_per_level: int) -> GroundTruth:
    """``n_per_level`` surface samples of each vertebra (seeded by level), base frame."""
    pts, levels, parts = [], [], []
    for lv in spine.levels:
        xyz, part = sample_surface(spine.vertebrae[lv], n_per_level, seed=lv)
        pts.append(apply_transform(plan.T_base_spine, xyz))
        levels.append(np.full(n_per_level, lv, dtype=np.uint8))
        parts.append(part.astype(np.uint8))
    return GroundTruth(np.vstack(pts), np.concatenate(levels), np.concatenate(parts))


def build_scenario(cfg: ScenarioConfig, probe: ProbeModel) -> Scenario:
    """Spine, plan, B-mode simulator, X-ray (if ``publish_xray``) and ground truth.

    Raises:
        ValueError, OSError, RuntimeError: the spine cannot be loaded or the sweep planned
            (e.g. unreachable for the arm).
    """
    cond = ChainConditions(
        breathing_mm=cfg.breathing_mm,
        breathing_hz=cfg.breathing_hz,
        contact_loss_frac=cfg.contact_loss_frac,
    )
    spine = load_spine(cfg)
    plan = plan_sweep(spine, cfg)
    sim = BModeSimulator(spine, probe, seed=cfg.seed)
    xray = lateral_xray(spine, plan, sim, cfg) if cfg.publish_xray else None
    truth = ground_truth(spine, plan, cfg.ground_truth_points_per_level)
    disturbed = None
    if cfg.breathing_mm > 0 or cfg.contact_loss_frac > 0:
        disturbed = frame_disturbances(plan.frame_times_ns, cond, cfg.seed)
    return Scenario(spine, plan, sim, xray, truth, disturbed, cfg.seed)
