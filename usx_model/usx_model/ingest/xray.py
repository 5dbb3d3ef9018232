"""Lateral X-ray ingestion: DICOM (de-identified) or PNG + JSON geometry -> :class:`XrayShot`.

X-ray device frame (mm): origin at the isocentre, +x from the source towards the
detector, detector columns along -y and rows along -z, i.e. the frame of
:func:`usx_model.sim.xray.lateral_geometry` for a spine at the isocentre
(a lateral shot of a prone/supine patient whose LPS axes match the device's). The
registration chain places this frame: ``T_base_xray = T_base_cbct @ T_cbct_xray``.

Pixel spacing at the isocentre: detector-plane spacing (``ImagerPixelSpacing``) times
SOD / SID (the cone-beam magnification at the isocentre is SID / SOD), when
``DistanceSourceToPatient`` and ``DistanceSourceToDetector`` are present; a
``PixelSpacing`` attribute is taken as already calibrated at the patient. The result says
which was used (:class:`SpacingSource`).

Only pixels and geometry leave this module: no header text is copied, and error
messages never quote header values, so no identifier reaches results or logs.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.multival import MultiValue

from usx_model.base.transforms import validate_transform
from usx_model.base.xray_geometry import XrayGeometry
from usx_model.ingest.deid import pseudonym


class SpacingSource(enum.StrEnum):
    """Where ``XrayShot.pixel_spacing_mm`` came from."""

    IMAGER_MAGNIFICATION_CORRECTED = "ImagerPixelSpacing*SOD/SID"
    IMAGER_UNCORRECTED = "ImagerPixelSpacing (no SOD/SID: not magnification-corrected)"
    PIXEL_SPACING = "PixelSpacing"
    JSON = "json"


@dataclass
class XrayShot:
    """A de-identified lateral X-ray.

    Attributes:
        image: (rows, cols) float32 pixel values (rescaled if the file says so).
        pixel_spacing_mm: (row, col) spacing at the isocentre, mm.
        spacing_source: how the spacing was obtained.
        geometry: cone-beam (SID/SOD known) or parallel-beam geometry in the X-ray
            device frame (or the JSON's world frame); None if the pixels are not square.
        pseudonym: keyed hash linking shots of one study, or None without a key.
    """

    image: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    spacing_source: SpacingSource
    geometry: XrayGeometry | None
    pseudonym: str | None = None


def _numbers(ds: pydicom.Dataset, keyword: str) -> list[float] | None:
    """The tag's numbers (None when absent or empty). The error names the tag but never
    quotes its text: a malformed header field could hold an identifier."""
    try:
        if keyword not in ds or ds[keyword].value in (None, ""):
            return None
        value = ds[keyword].value
        items = value if isinstance(value, list | tuple | MultiValue) else [value]
        return [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"{keyword} is not a number") from None


def _pair(ds: pydicom.Dataset, keyword: str) -> tuple[float, float]:
    vals = _numbers(ds, keyword) or []
    if len(vals) != 2 or min(vals) <= 0 or not np.all(np.isfinite(vals)):
        raise ValueError(f"expected {keyword} as two positive numbers, got {len(vals)} values")
    return vals[0], vals[1]


def _distance(ds: pydicom.Dataset, keyword: str) -> float | None:
    vals = _numbers(ds, keyword)
    if vals is None:
        return None
    if len(vals) != 1:
        raise ValueError(f"expected {keyword} as one number, got {len(vals)} values")
    val = vals[0]
    if not (np.isfinite(val) and val > 0):
        raise ValueError(f"expected {keyword} > 0 mm, got {val}")
    return val


def device_geometry(
    shape: tuple[int, int],
    detector_pixel_mm: float,
    sid_mm: float | None,
    sod_mm: float | None,
    T_world_xray: np.ndarray | None = None,
) -> XrayGeometry:
    """Geometry of a lateral C-arm shot in the device frame (or ``T_world_xray`` applied).

    With ``sid_mm`` and ``sod_mm`` the beam is a cone from ``(-sod, 0, 0)`` to a detector
    centred at ``(sid - sod, 0, 0)``; without them, a parallel beam along +x whose
    detector pitch is the spacing at the object.

    Raises:
        ValueError: non-positive sizes or ``sod_mm >= sid_mm``.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"expected a (rows, cols) shape, got {shape}")
    if not (np.isfinite(detector_pixel_mm) and detector_pixel_mm > 0):
        raise ValueError(f"detector pixel size must be > 0 mm, got {detector_pixel_mm}")
    if sid_mm is None or sod_mm is None:
        source, det, parallel = np.array([-1000.0, 0, 0]), np.zeros(3), True
    else:
        if not 0 < sod_mm < sid_mm:
            raise ValueError(f"expected 0 < SOD < SID, got SOD={sod_mm} mm, SID={sid_mm} mm")
        source, det, parallel = np.array([-sod_mm, 0, 0]), np.array([sid_mm - sod_mm, 0, 0]), False
    u, v = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, -1.0])
    if T_world_xray is not None:
        T = validate_transform(T_world_xray, "T_world_xray", atol=1e-5)
        R, t = T[:3, :3], T[:3, 3]
        source, det, u, v = R @ source + t, R @ det + t, R @ u, R @ v
    as3 = lambda a: tuple(float(x) for x in a)  # noqa: E731
    return XrayGeometry(
        as3(source),
        as3(det),
        as3(u),
        as3(v),
        float(detector_pixel_mm),
        (int(shape[0]), int(shape[1])),
        parallel,
    )


def read_xray_dicom(source: str | pydicom.Dataset, pseudonym_key: bytes | None = None) -> XrayShot:
    """Read a lateral X-ray DICOM into a de-identified :class:`XrayShot`.

    Args:
        source: a file path or an already parsed dataset.
        pseudonym_key: site secret for :func:`usx_model.ingest.deid.pseudonym`; None
            gives no pseudonym.

    Raises:
        FileNotFoundError: no such file.
        ValueError: no pixel data, not a single 2D frame, or no usable spacing
            (neither ImagerPixelSpacing nor PixelSpacing).
    """
    if isinstance(source, pydicom.Dataset):
        ds = source
    else:
        if not os.path.isfile(source):
            raise FileNotFoundError(f"X-ray DICOM not found: {source}")
        ds = pydicom.dcmread(source)
    if "PixelData" not in ds:
        raise ValueError("X-ray DICOM has no PixelData")
    image = np.asarray(ds.pixel_array, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected one 2D X-ray frame, got pixel data of shape {image.shape}")
    image = image * float(ds.get("RescaleSlope", 1.0)) + float(ds.get("RescaleIntercept", 0.0))
    sid = _distance(ds, "DistanceSourceToDetector")
    sod = _distance(ds, "DistanceSourceToPatient")
    if "ImagerPixelSpacing" in ds:
        det = _pair(ds, "ImagerPixelSpacing")
        if sid is not None and sod is not None:
            if sod >= sid:
                raise ValueError(f"expected SOD < SID, got SOD={sod} mm, SID={sid} mm")
            spacing, how = (
                (det[0] * sod / sid, det[1] * sod / sid),
                SpacingSource.IMAGER_MAGNIFICATION_CORRECTED,
            )
        else:
            spacing, how = det, SpacingSource.IMAGER_UNCORRECTED
        geom_pitch, cone = det, sid is not None and sod is not None
    elif "PixelSpacing" in ds:
        spacing, how = _pair(ds, "PixelSpacing"), SpacingSource.PIXEL_SPACING
        geom_pitch, cone = spacing, False
    else:
        raise ValueError("X-ray DICOM lacks both ImagerPixelSpacing and PixelSpacing")
    geometry = None
    if np.isclose(geom_pitch[0], geom_pitch[1], rtol=1e-6):
        geometry = device_geometry(
            image.shape, geom_pitch[0], sid if cone else None, sod if cone else None
        )
    return XrayShot(
        image=image,
        pixel_spacing_mm=(float(spacing[0]), float(spacing[1])),
        spacing_source=how,
        geometry=geometry,
        pseudonym=None if pseudonym_key is None else pseudonym(ds, pseudonym_key),
    )


def read_xray_png(png_path: str, json_path: str) -> XrayShot:
    """Read a PNG X-ray with a JSON geometry file.

    JSON keys: ``pixel_mm`` (detector pitch, mm, required), ``sid_mm`` and ``sod_mm``
    (cone beam; both or neither, neither = parallel beam with ``pixel_mm`` at the
    object), ``T_world_xray`` (optional 4x4 nested list: pose of the device frame in the
    world frame the points should land in).

    Raises:
        FileNotFoundError: a missing file.
        ValueError: invalid JSON, a missing/invalid key, or not a 2D grey image.
    """
    from PIL import Image

    for path in (png_path, json_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"X-ray file not found: {path}")
    with open(json_path, encoding="utf-8") as fh:
        try:
            meta = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"X-ray geometry {json_path} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or "pixel_mm" not in meta:
        raise ValueError(
            f"X-ray geometry {json_path} needs key 'pixel_mm' (detector pixel pitch, mm)"
        )
    if ("sid_mm" in meta) != ("sod_mm" in meta):
        raise ValueError("X-ray geometry needs both 'sid_mm' and 'sod_mm' or neither")
    image = np.asarray(Image.open(png_path)).astype(np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a single-channel (grey) X-ray PNG, got shape {image.shape}")
    pitch = float(meta["pixel_mm"])
    sid, sod = meta.get("sid_mm"), meta.get("sod_mm")
    T = meta.get("T_world_xray")
    geometry = device_geometry(
        image.shape,
        pitch,
        None if sid is None else float(sid),
        None if sod is None else float(sod),
        None if T is None else np.asarray(T, dtype=np.float64),
    )
    iso = pitch * (float(sod) / float(sid) if sid is not None else 1.0)
    return XrayShot(image, (iso, iso), SpacingSource.JSON, geometry)
