"""The completion dataset on disk: one HDF5 file, one row per vertebra.

Contract (other tools read these names; keep them stable):

==================  ===========  =====================================================
key                 shape        meaning
==================  ===========  =====================================================
``us_partial``      (S, Np, 3)   simulated US partial cloud, mm, spine LPS frame
``xray``            (S, Nx, 3)   lateral X-ray body points (2.5D), mm, spine LPS frame
``gt``              (S, Ngt, 3)  complete surface samples, mm, spine LPS frame
``gt_part``         (S, Ngt)     uint8 part code per GT point (``phantom.parts.Part``)
``level``           (S,)         uint8 1..5 (L1..L5)
``spine_id``        (S,)         UTF-8 string, the spine the vertebra belongs to
``split``           (S,)         UTF-8 string in {train, val, test}; by spine
``norm_centre_mm``  (S, 3)       observation-only normalisation centre (network.prepare)
``norm_scale_mm``   (S,)         observation-only normalisation scale (mm per unit)
==================  ===========  =====================================================

File attributes record how the file was made (``seed``, ``n_spines``, builder options,
``usx_version``). Point arrays are *not* normalised; training normalises them with the
same code as inference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

SPLITS: tuple[str, ...] = ("train", "val", "test")

_POINT_KEYS = ("us_partial", "xray", "gt")
_STR = h5py.string_dtype("utf-8")


@dataclass
class VertebraSamples:
    """In-memory rows of the dataset (S vertebrae); field meanings as in the module table."""

    us_partial: np.ndarray
    xray: np.ndarray
    gt: np.ndarray
    gt_part: np.ndarray
    level: np.ndarray
    spine_id: np.ndarray
    split: np.ndarray
    norm_centre_mm: np.ndarray
    norm_scale_mm: np.ndarray

    def __len__(self) -> int:
        return int(self.level.shape[0])

    def select(self, mask: np.ndarray) -> VertebraSamples:
        """The rows where ``mask`` (S,) bool or an index array selects."""
        return VertebraSamples(**{k: v[mask] for k, v in vars(self).items()})

    def content_sha256(self) -> str:
        """Hex sha256 of every field's name, dtype, shape and values, in field order.

        Identifies what a model was trained on: two files with the same content give the
        same digest even though HDF5 stores write times (the file bytes differ), and a
        rebuilt dataset that no longer matches (another generator version) shows at once.
        """
        h = hashlib.sha256()
        for name, value in vars(self).items():
            a = np.asarray(value)
            if a.dtype.kind in "OUS":  # strings: h5py reads them as object arrays
                h.update(f"{name}:str:{a.shape};".encode())
                h.update("\0".join(str(v) for v in a.ravel()).encode())
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()


def _check(samples: VertebraSamples) -> None:
    s = len(samples)
    for key in _POINT_KEYS:
        arr = getattr(samples, key)
        if arr.ndim != 3 or arr.shape[0] != s or arr.shape[2] != 3:
            raise ValueError(f"{key}: expected ({s}, N, 3) points, got {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{key}: contains NaN/Inf")
    if samples.gt_part.shape != samples.gt.shape[:2]:
        raise ValueError(f"gt_part: expected {samples.gt.shape[:2]}, got {samples.gt_part.shape}")
    for key in ("level", "spine_id", "split", "norm_scale_mm"):
        if getattr(samples, key).shape != (s,):
            raise ValueError(f"{key}: expected ({s},), got {getattr(samples, key).shape}")
    if samples.norm_centre_mm.shape != (s, 3):
        raise ValueError(f"norm_centre_mm: expected ({s}, 3), got {samples.norm_centre_mm.shape}")
    bad_levels = set(np.unique(samples.level).tolist()) - {1, 2, 3, 4, 5}
    if bad_levels:
        raise ValueError(f"level: expected values 1..5, got {sorted(bad_levels)}")
    bad_splits = set(np.unique(samples.split).tolist()) - set(SPLITS)
    if bad_splits:
        raise ValueError(f"split: expected values in {SPLITS}, got {sorted(bad_splits)}")
    # Splits are by spine: a spine in two splits would leak shapes into evaluation.
    spine_split: dict[str, str] = {}
    for sid, sp in zip(samples.spine_id.tolist(), samples.split.tolist(), strict=True):
        if spine_split.setdefault(sid, sp) != sp:
            raise ValueError(f"spine {sid!r} appears in splits {spine_split[sid]!r} and {sp!r}")


def write_samples(path: str | Path, samples: VertebraSamples, attrs: Mapping) -> None:
    """Write ``samples`` to a new HDF5 file (gzip-compressed) with file attributes.

    Raises:
        ValueError: inconsistent shapes, bad levels/splits, a spine in two splits.
    """
    _check(samples)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".partial")
    with h5py.File(tmp, "w") as f:
        for key in (*_POINT_KEYS, "norm_centre_mm", "norm_scale_mm"):
            f.create_dataset(
                key, data=getattr(samples, key).astype(np.float32), compression="gzip", shuffle=True
            )
        f.create_dataset("gt_part", data=samples.gt_part.astype(np.uint8), compression="gzip")
        f.create_dataset("level", data=samples.level.astype(np.uint8))
        f.create_dataset("spine_id", data=samples.spine_id.astype(object), dtype=_STR)
        f.create_dataset("split", data=samples.split.astype(object), dtype=_STR)
        for k, v in attrs.items():
            f.attrs[k] = v if isinstance(v, int | float | str) else json.dumps(v)
    tmp.replace(path)  # never leave a half-written file under the final name


def read_samples(path: str | Path, split: str | None = None) -> VertebraSamples:
    """Read a dataset file, optionally only one split (``train``/``val``/``test``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a usx dataset (missing keys) or an unknown split.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset {path} does not exist")
    if split is not None and split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path} is not a readable HDF5 file: {exc}") from exc
    with f:
        keys = [*_POINT_KEYS, "gt_part", "level", "spine_id", "split"]
        keys += ["norm_centre_mm", "norm_scale_mm"]
        missing = [k for k in keys if k not in f]
        if missing:
            raise ValueError(f"{path} is not a usx dataset: missing {missing}")
        split_col = f["split"].asstr()[...]
        rows = np.flatnonzero(split_col == split) if split is not None else slice(None)
        data = {}
        for k in keys:
            if k in ("spine_id", "split"):
                data[k] = f[k].asstr()[...][rows]
            else:
                data[k] = f[k][rows] if isinstance(rows, slice) else f[k][...][rows]
    return VertebraSamples(**data)


def read_attrs(path: str | Path) -> dict:
    """File attributes (JSON-encoded values decoded)."""
    with h5py.File(path, "r") as f:
        out = {}
        for k, v in f.attrs.items():
            if isinstance(v, str) and v[:1] in "[{":
                try:
                    v = json.loads(v)
                except json.JSONDecodeError:
                    pass
            out[k] = v.item() if isinstance(v, np.generic) else v
        return out
