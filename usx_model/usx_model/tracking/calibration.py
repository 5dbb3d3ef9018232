"""Probe calibration: flange -> probe (hand-eye) and probe -> image, and pixels -> base frame.

Image-frame convention (frame ``us_image``), used by compounding and segmentation:

* pixel coordinates (u, v): u = column index, v = row index, pixel *centres* at integers,
  (0, 0) the centre of the top-left pixel;
* the image frame's origin is the point of the image plane at pixel position
  ``origin_px = (u0, v0)``; by default the probe face centre, ``((W - 1) / 2, 0)``,
  i.e. the middle of the top row (rows grow with depth);
* x = lateral, along increasing columns; y = depth (axial), along increasing rows;
  z = x cross y = elevation (normal to the image plane); millimetres;
* a pixel maps to ``((u - u0) * spacing_u, (v - v0) * spacing_v, 0)`` mm.

Probe frame ``us_probe`` (a convention, fixed only by the default ``T_probe_image``):
origin at the probe face centre, z along the beam into the tissue, x lateral,
y = z cross x. The default ``T_probe_image`` (rpy = (90, 0, 0) deg) says exactly that:
image x -> probe x, image y (depth) -> probe z, image z -> probe -y.

The full chain for one frame is
``T_base_image = T_base_ee @ T_ee_probe @ T_probe_image`` and, with the pixel scaling,
``T_base_pixel = T_base_image @ T_image_pixel`` (an affine map, not rigid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from usx_model.base.transforms import transform_from_xyz_rpy, validate_transform


@dataclass(frozen=True)
class ImageCalibration:
    """Pixel spacing and origin of the B-mode image.

    Attributes:
        spacing_mm: (spacing along columns = lateral, spacing along rows = depth), mm/px.
        origin_px: (u0, v0) pixel position (column, row) of the image-frame origin.
    """

    spacing_mm: tuple[float, float]
    origin_px: tuple[float, float]

    def __post_init__(self) -> None:
        spacing = np.asarray(self.spacing_mm, dtype=np.float64)
        origin = np.asarray(self.origin_px, dtype=np.float64)
        if spacing.shape != (2,) or not np.all(np.isfinite(spacing)) or np.any(spacing <= 0):
            raise ValueError(
                f"expected spacing_mm as 2 positive numbers (lateral, depth), got {self.spacing_mm}"
            )
        if origin.shape != (2,) or not np.all(np.isfinite(origin)):
            raise ValueError(f"expected origin_px as 2 finite numbers (u, v), got {self.origin_px}")
        object.__setattr__(self, "spacing_mm", (float(spacing[0]), float(spacing[1])))
        object.__setattr__(self, "origin_px", (float(origin[0]), float(origin[1])))

    @classmethod
    def centred_on_face(cls, width_px: int, spacing_mm: tuple[float, float]) -> ImageCalibration:
        """Origin at the probe face centre: ``((W - 1) / 2, -0.5)``.

        Row 0 spans depths [0, spacing] below the face, so its centre lies half a pixel
        deep: the face is the top *edge* of the image (the B-mode simulator's convention).
        """
        if width_px < 1:
            raise ValueError(f"expected width_px >= 1, got {width_px}")
        return cls(spacing_mm=spacing_mm, origin_px=((width_px - 1) / 2.0, -0.5))

    def T_image_pixel(self) -> np.ndarray:
        """(4, 4) affine: homogeneous pixel (u, v, 0, 1) -> image-frame point, mm."""
        su, sv = self.spacing_mm
        u0, v0 = self.origin_px
        T = np.diag([su, sv, 1.0, 1.0])
        T[:2, 3] = [-u0 * su, -v0 * sv]
        return T


def _transform_from_spec(spec: dict | list, name: str) -> np.ndarray:
    """``{"xyz_mm": [..], "rpy_deg": [..]}`` or ``{"matrix": 4x4}`` or a 4x4 list -> (4, 4)."""
    if isinstance(spec, dict):
        if "matrix" in spec:
            return validate_transform(spec["matrix"], name)
        unknown = set(spec) - {"xyz_mm", "rpy_deg"}
        if unknown:
            raise ValueError(
                f"{name}: expected keys xyz_mm and rpy_deg (or matrix), got {sorted(spec)}"
            )
        return transform_from_xyz_rpy(spec.get("xyz_mm", [0, 0, 0]), spec.get("rpy_deg", [0, 0, 0]))
    return validate_transform(spec, name)


def _default_T_probe_image() -> np.ndarray:
    return transform_from_xyz_rpy([0.0, 0.0, 0.0], [90.0, 0.0, 0.0])


@dataclass(frozen=True)
class ProbeCalibration:
    """Hand-eye and image calibration of the probe mounted on the flange.

    Attributes:
        image: pixel spacing and origin.
        T_ee_probe: (4, 4) rigid, probe frame in the flange frame ``lbr_link_ee``, mm.
        T_probe_image: (4, 4) rigid, image frame in the probe frame, mm.
        temporal_offset_ms: added to an image stamp to get the joint-state time of its
            acquisition (``usx calibrate temporal``).
    """

    image: ImageCalibration
    T_ee_probe: np.ndarray = field(default_factory=lambda: np.eye(4))
    T_probe_image: np.ndarray = field(default_factory=_default_T_probe_image)
    temporal_offset_ms: float = 0.0

    def __post_init__(self) -> None:
        offset = float(self.temporal_offset_ms)
        if not np.isfinite(offset):
            raise ValueError(f"temporal_offset_ms must be finite, got {self.temporal_offset_ms}")
        object.__setattr__(self, "temporal_offset_ms", offset)
        object.__setattr__(self, "T_ee_probe", validate_transform(self.T_ee_probe, "T_ee_probe"))
        object.__setattr__(
            self, "T_probe_image", validate_transform(self.T_probe_image, "T_probe_image")
        )

    @property
    def T_ee_image(self) -> np.ndarray:
        """(4, 4) rigid image frame in the flange frame, mm."""
        return self.T_ee_probe @ self.T_probe_image

    @property
    def T_ee_pixel(self) -> np.ndarray:
        """(4, 4) affine: homogeneous pixel (u, v, 0, 1) -> flange frame, mm."""
        return self.T_ee_image @ self.image.T_image_pixel()

    @classmethod
    def from_dict(cls, spec: dict) -> ProbeCalibration:
        """Build from a dict (e.g. parsed YAML); see ``config/probe.yaml`` for the layout.

        Keys: ``image`` (``spacing_mm``, ``origin_px``; or ``width_px`` instead of
        ``origin_px`` for the face-centre default), optional ``T_ee_probe`` and
        ``T_probe_image``, each ``{xyz_mm, rpy_deg}`` or ``{matrix}``, optional
        ``temporal_offset_ms``.
        """
        if not isinstance(spec, dict) or "image" not in spec:
            raise ValueError(f"expected a dict with an 'image' entry, got {spec!r:.80}")
        unknown = set(spec) - {"image", "T_ee_probe", "T_probe_image", "temporal_offset_ms"}
        if unknown:
            raise ValueError(f"unknown probe calibration keys: {sorted(unknown)}")
        img = spec["image"]
        if "origin_px" in img:
            image = ImageCalibration(tuple(img["spacing_mm"]), tuple(img["origin_px"]))
        elif "width_px" in img:
            image = ImageCalibration.centred_on_face(int(img["width_px"]), tuple(img["spacing_mm"]))
        else:
            raise ValueError("image calibration needs spacing_mm and origin_px (or width_px)")
        kwargs = {
            key: _transform_from_spec(spec[key], key)
            for key in ("T_ee_probe", "T_probe_image")
            if key in spec
        }
        offset = spec.get("temporal_offset_ms", 0.0)
        if isinstance(offset, bool) or not isinstance(offset, int | float):
            raise ValueError(f"temporal_offset_ms: expected a number, got {offset!r}")
        return cls(image=image, temporal_offset_ms=offset, **kwargs)

    def to_dict(self) -> dict:
        """Inverse of ``from_dict`` (matrices written out in full)."""
        return {
            "image": {
                "spacing_mm": list(self.image.spacing_mm),
                "origin_px": list(self.image.origin_px),
            },
            "T_ee_probe": {"matrix": self.T_ee_probe.tolist()},
            "T_probe_image": {"matrix": self.T_probe_image.tolist()},
            "temporal_offset_ms": self.temporal_offset_ms,
        }


def shipped_probe_calibration_path() -> Path:
    """The repository's ``config/probe.yaml``: the one probe calibration of usx.

    The ROS nodes (``probe_calibration`` parameter, "" = this file) and the CLI read it.

    Raises:
        FileNotFoundError: not a source checkout (names the path looked at).
    """
    path = Path(__file__).resolve().parents[3] / "config" / "probe.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"no probe calibration at {path}")
    return path


def load_probe_calibration(path: str | Path | None = None) -> ProbeCalibration:
    """Read a probe calibration YAML (top-level ``probe_calibration:`` key or the bare dict).

    Args:
        path: the file; None = ``shipped_probe_calibration_path()``.

    Raises:
        OSError: the file cannot be read.
        ValueError: it is not YAML or not a valid calibration (says what is wrong).
    """
    import yaml  # only needed here; keeps the module importable without PyYAML

    path = shipped_probe_calibration_path() if path is None else path
    with open(path, encoding="utf-8") as fh:
        try:
            spec = yaml.safe_load(fh)
        except yaml.YAMLError as exc:
            raise ValueError(f"not valid YAML: {exc}".replace("\n", " ")) from exc
    if isinstance(spec, dict) and "probe_calibration" in spec:
        spec = spec["probe_calibration"]
    try:
        calibration = ProbeCalibration.from_dict(spec)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed probe calibration: {type(exc).__name__} {exc}") from exc
    check_plausible(calibration, str(path))
    return calibration


#: plausible ranges of a probe calibration: pixel spacing (mm/px), probe face distance
#: from the flange (mm), image origin (px), clock offset (ms)
SPACING_RANGE_MM = (0.01, 2.0)
MAX_FLANGE_DISTANCE_MM = 1000.0
MAX_ORIGIN_PX = 10000.0
MAX_TEMPORAL_OFFSET_MS = 1000.0


def check_plausible(calibration: ProbeCalibration, source: str = "probe calibration") -> None:
    """Refuse a calibration no probe can have (a unit slip, a pasted wrong matrix).

    Raises:
        ValueError: one line naming ``source``, the value and the plausible range.
    """
    lo, hi = SPACING_RANGE_MM
    for name, value in zip(("lateral", "depth"), calibration.image.spacing_mm, strict=True):
        if not lo <= value <= hi:
            raise ValueError(
                f"{source}: implausible {name} pixel spacing {value} mm/px, expected "
                f"{lo}-{hi} (metres or micrometres instead of mm?)"
            )
    reach = float(np.linalg.norm(calibration.T_ee_image[:3, 3]))
    if reach > MAX_FLANGE_DISTANCE_MM:
        raise ValueError(
            f"{source}: implausible image origin {reach:.0f} mm from the flange, expected "
            f"<= {MAX_FLANGE_DISTANCE_MM:.0f} mm (a translation in metres read as mm?)"
        )
    if abs(calibration.temporal_offset_ms) > MAX_TEMPORAL_OFFSET_MS:
        raise ValueError(
            f"{source}: implausible temporal_offset_ms {calibration.temporal_offset_ms}, "
            f"expected within +-{MAX_TEMPORAL_OFFSET_MS:.0f} ms (seconds written as ms?)"
        )
    if np.max(np.abs(calibration.image.origin_px)) > MAX_ORIGIN_PX:
        raise ValueError(
            f"{source}: implausible image origin_px {list(calibration.image.origin_px)}, "
            f"expected within +-{MAX_ORIGIN_PX:.0f} px"
        )


def save_probe_calibration(
    calibration: ProbeCalibration, path: str | Path, comment: str = ""
) -> None:
    """Write ``calibration`` as a YAML file ``load_probe_calibration`` reads back exactly.

    ``comment``: lines written as a YAML comment at the top (provenance).
    """
    import yaml

    check_plausible(calibration)
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    body = yaml.safe_dump({"probe_calibration": calibration.to_dict()}, sort_keys=False)
    Path(path).write_text(head + body, encoding="utf-8")


def base_pixel_transform(T_base_ee: np.ndarray, calibration: ProbeCalibration) -> np.ndarray:
    """``T_base_pixel = T_base_ee @ T_ee_probe @ T_probe_image @ T_image_pixel``.

    Args:
        T_base_ee: (4, 4) or (N, 4, 4) flange pose(s) in the base frame, mm.
        calibration: the probe calibration.

    Returns:
        (4, 4) or (N, 4, 4) affine maps from homogeneous pixels (u, v, 0, 1) to base mm.
    """
    T_base_ee = np.asarray(T_base_ee, dtype=np.float64)
    if T_base_ee.shape[-2:] != (4, 4) or T_base_ee.ndim not in (2, 3):
        raise ValueError(f"expected T_base_ee of shape (4, 4) or (N, 4, 4), got {T_base_ee.shape}")
    return T_base_ee @ calibration.T_ee_pixel


def pixels_to_base(uv_px: np.ndarray, T_base_pixel: np.ndarray) -> np.ndarray:
    """Map pixel positions of one frame to 3D points in the base frame.

    Args:
        uv_px: (K, 2) pixel positions (u = column, v = row); integers or sub-pixel floats.
        T_base_pixel: (4, 4) from ``base_pixel_transform``.

    Returns:
        (K, 3) float64 points, mm, base frame.
    """
    uv_px = np.asarray(uv_px)
    if uv_px.ndim != 2 or uv_px.shape[1] != 2:
        raise ValueError(f"expected (K, 2) pixel positions (u, v), got {uv_px.shape}")
    T = np.asarray(T_base_pixel, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"expected T_base_pixel of shape (4, 4), got {T.shape}")
    return uv_px.astype(np.float64) @ T[:3, :2].T + T[:3, 3]
