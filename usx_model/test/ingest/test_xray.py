"""X-ray ingestion: spacing/magnification, de-identification proof, PNG + JSON, bad input."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from usx_model.ingest.deid import BASIC_PROFILE_KEYWORDS, deidentify, pseudonym
from usx_model.ingest.xray import SpacingSource, read_xray_dicom, read_xray_png

IDENTIFIERS = {
    "PatientName": "Doe^Jane",
    "PatientID": "MRN-0042-XYZ",
    "PatientBirthDate": "19610203",
    "AccessionNumber": "ACC99881",
    "InstitutionName": "St Example Hospital",
    "ReferringPhysicianName": "House^Gregory",
    "StudyID": "STUDY-777",
    "OperatorsName": "Tech^Tina",
}


def _dicom(tmp_path, **extra) -> str:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    for k, v in IDENTIFIERS.items():
        setattr(ds, k, v)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.Modality = "DX"
    ds.Rows, ds.Columns = 4, 6
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = np.arange(24, dtype=np.uint16).reshape(4, 6).tobytes()
    for k, v in extra.items():
        if v is None:
            delattr(ds, k) if k in ds else None
        else:
            setattr(ds, k, v)
    path = str(tmp_path / "shot.dcm")
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize(
    ("tags", "spacing", "source"),
    [
        (
            {
                "ImagerPixelSpacing": [0.3, 0.3],
                "DistanceSourceToDetector": 1100,
                "DistanceSourceToPatient": 750,
            },
            0.3 * 750 / 1100,
            SpacingSource.IMAGER_MAGNIFICATION_CORRECTED,
        ),
        ({"ImagerPixelSpacing": [0.2, 0.2]}, 0.2, SpacingSource.IMAGER_UNCORRECTED),
        ({"PixelSpacing": [0.25, 0.25]}, 0.25, SpacingSource.PIXEL_SPACING),
    ],
)
def test_spacing_and_magnification(tmp_path, tags, spacing, source):
    shot = read_xray_dicom(_dicom(tmp_path, **tags))
    assert shot.spacing_source is source
    np.testing.assert_allclose(shot.pixel_spacing_mm, (spacing, spacing), rtol=1e-12)
    np.testing.assert_array_equal(shot.image, np.arange(24).reshape(4, 6))
    # the geometry's magnification at the isocentre undoes the spacing correction
    if source is SpacingSource.IMAGER_MAGNIFICATION_CORRECTED:
        assert shot.geometry.magnification(0.0) == pytest.approx(1100 / 750)
        assert shot.geometry.pixel_mm / shot.geometry.magnification(0.0) == pytest.approx(spacing)


def test_no_identifier_reaches_the_result(tmp_path):
    tags = {
        "ImagerPixelSpacing": [0.3, 0.3],
        "DistanceSourceToDetector": 1100,
        "DistanceSourceToPatient": 750,
    }
    path = _dicom(tmp_path, **tags)
    ds = pydicom.dcmread(path)
    secrets = [
        *IDENTIFIERS.values(),
        str(ds.StudyInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.SeriesInstanceUID),
    ]
    shot = read_xray_dicom(path, pseudonym_key=b"site-secret")
    fields = {f.name: getattr(shot, f.name) for f in dataclasses.fields(shot)}
    dump = json.dumps(fields, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    text = repr(shot) + dump + "".join(str(v) for v in fields.values())
    for s in secrets:
        assert s not in text and s.lower() not in text.lower()
    assert shot.pseudonym == pseudonym(ds, b"site-secret") and len(shot.pseudonym) == 16


def test_deidentify_removes_profile_tags(tmp_path):
    ds = pydicom.dcmread(_dicom(tmp_path, PixelSpacing=[0.2, 0.2]))
    clean = deidentify(ds)
    for kw in [*IDENTIFIERS, "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]:
        assert kw in ds and kw not in clean
    assert "PatientName" in BASIC_PROFILE_KEYWORDS
    assert clean.PixelSpacing == ds.PixelSpacing and clean.SOPClassUID == ds.SOPClassUID


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({}, "lacks both ImagerPixelSpacing and PixelSpacing"),
        ({"PixelSpacing": [0.2, 0.2], "PixelData": None}, "has no PixelData"),
        (
            {
                "ImagerPixelSpacing": [0.3, 0.3],
                "DistanceSourceToDetector": 700,
                "DistanceSourceToPatient": 750,
            },
            "expected SOD < SID",
        ),
        ({"PixelSpacing": [0.2, -1.0]}, "expected PixelSpacing as two positive numbers"),
    ],
)
def test_bad_dicom(tmp_path, tags, match):
    with pytest.raises(ValueError, match=match):
        read_xray_dicom(_dicom(tmp_path, **tags))


@pytest.mark.parametrize(
    ("tags", "placeholder", "keyword"),
    [
        ({"PixelSpacing": [1.25, 0.2]}, b"1.25\\0.2", "PixelSpacing"),
        (
            {
                "ImagerPixelSpacing": [0.3, 0.3],
                "DistanceSourceToDetector": "1100.125",
                "DistanceSourceToPatient": 750,
            },
            b"1100.125",
            "DistanceSourceToDetector",
        ),
    ],
)
def test_malformed_geometry_tag_is_named_not_quoted(tmp_path, tags, placeholder, keyword):
    """A number tag holding text (here a name) fails naming the tag, never its text."""
    path = Path(_dicom(tmp_path, **tags))
    data = path.read_bytes()
    assert data.count(placeholder) == 1
    path.write_bytes(data.replace(placeholder, b"DOE^JOHN"))  # same length, raw header text
    with pytest.raises(ValueError) as exc:
        read_xray_dicom(str(path))
    assert str(exc.value) == f"{keyword} is not a number"


def test_missing_dicom_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="X-ray DICOM not found"):
        read_xray_dicom(str(tmp_path / "nope.dcm"))


def _png(tmp_path, meta) -> tuple[str, str]:
    png, js = tmp_path / "x.png", tmp_path / "x.json"
    Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4)).save(png)
    js.write_text(json.dumps(meta))
    return str(png), str(js)


@pytest.mark.parametrize(
    ("meta", "parallel", "spacing"),
    [
        ({"pixel_mm": 0.4, "sid_mm": 1000, "sod_mm": 800}, False, 0.32),
        ({"pixel_mm": 0.4}, True, 0.4),
    ],
)
def test_png_json(tmp_path, meta, parallel, spacing):
    T = np.eye(4)
    T[:3, 3] = [10.0, 20.0, 30.0]
    shot = read_xray_png(*_png(tmp_path, {**meta, "T_world_xray": T.tolist()}))
    assert shot.image.shape == (3, 4) and shot.geometry.parallel is parallel
    assert shot.pixel_spacing_mm == pytest.approx((spacing, spacing))
    # the beam runs along the device +x, translated by T_world_xray
    np.testing.assert_allclose(shot.geometry.normal, [1, 0, 0])
    if not parallel:
        np.testing.assert_allclose(shot.geometry.source_mm, [10 - 800, 20, 30])


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        ({"sid_mm": 1000, "sod_mm": 800}, "needs key 'pixel_mm'"),
        ({"pixel_mm": 0.4, "sid_mm": 1000}, "both 'sid_mm' and 'sod_mm' or neither"),
        ({"pixel_mm": 0.4, "sid_mm": 700, "sod_mm": 800}, "expected 0 < SOD < SID"),
        ({"pixel_mm": 0.4, "T_world_xray": [[np.nan] * 4] * 4}, "non-finite"),
    ],
)
def test_bad_png_json(tmp_path, meta, match):
    with pytest.raises(ValueError, match=match):
        read_xray_png(*_png(tmp_path, meta))
