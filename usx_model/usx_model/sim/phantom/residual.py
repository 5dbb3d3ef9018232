"""Residual shape fields: real bone's departure from its nearest phantom, applied to phantoms.

The procedural phantom cannot make real vertebrae (its nearest vertebra of the same level
lies about twice as far from a real one as from another phantom one; docs/results.md,
"Where the real-anatomy gap comes from"). A residual field is the smooth displacement that
takes a phantom vertebra onto the real vertebra it fits best (fitted by
``evaluation.residuals``); a library of them, applied to other phantom vertebrae, carries
real proportions and relief into the training data without any real surface entering it.

A field is stored in a vertebra's own normalised frame (:func:`vertebra_frame`): sample
positions ``z = A (x - c) / r`` and displacements ``d = A u / r``, with ``c`` the
vertebra's centroid, ``A`` the rows lateral (L), posterior (P), superior (S) and ``r``
the RMS distance of its vertices from ``c``. Applying a field to another vertebra maps
its vertices into that frame, interpolates ``d`` from the nearest samples and maps it
back with the target's own ``A`` and ``r``, so a field follows the target's tilt and size.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from usx_model.base.parts import Part
from usx_model.sim.phantom.types import Spine, VertebraMesh

#: Field samples whose displacements are blended at each target vertex.
NEIGHBOURS = 8
#: Blending width in normalised units (about 1.5 mm for a 28 mm RMS radius).
BLEND = 0.055
#: Which parts a field moves: every vertex, or the posterior elements only.
PARTS = ("all", "arch")
#: Width of the ramp between moved arch and unmoved body, mm (no tear at the pedicles).
PART_RAMP_MM = 4.0


def vertebra_frame(vm: VertebraMesh) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre (3,), axes (3, 3) (rows L, P, S) and RMS radius (mm) of a phantom vertebra.

    P runs from the body's centroid to the vertebra's, made orthogonal to the spine
    frame's lateral axis; S = L x P. Needs part labels (a body).

    Raises:
        ValueError: on a vertebra without body vertices or a degenerate frame.
    """
    v = np.asarray(vm.vertices_mm, dtype=np.float64)
    if not np.any(vm.part == Part.BODY):
        raise ValueError(f"L{vm.level}: expected part labels with a body, got none")
    c = np.asarray(vm.centroid_mm, dtype=np.float64)
    lat = np.array([1.0, 0.0, 0.0])
    p = c - np.asarray(vm.body_centroid_mm, dtype=np.float64)
    p = p - (p @ lat) * lat
    if not np.linalg.norm(p) > 1e-6:
        raise ValueError(f"L{vm.level}: body and vertebra centroids coincide laterally")
    p /= np.linalg.norm(p)
    axes = np.stack([lat, p, np.cross(lat, p)])
    radius = float(np.sqrt(np.mean(np.sum((v - c) ** 2, axis=1))))
    return c, axes, radius


@dataclass(frozen=True)
class ResidualLibrary:
    """Residual fields, concatenated.

    Attributes:
        names: (K,) source names (the real vertebra each field was fitted to).
        levels: (K,) lumbar level of each source, 1..5.
        offsets: (K + 1,) field k's samples are rows ``offsets[k]:offsets[k + 1]``.
        points: (N, 3) sample positions, normalised frame.
        displacements: (N, 3) displacements at them, normalised frame.
    """

    names: np.ndarray
    levels: np.ndarray
    offsets: np.ndarray
    points: np.ndarray
    displacements: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.names)
        if k < 1 or len(self.levels) != k or len(self.offsets) != k + 1:
            raise ValueError(
                f"expected K >= 1 names, K levels and K + 1 offsets, got {k},"
                f" {len(self.levels)}, {len(self.offsets)}"
            )
        n = len(self.points)
        if self.points.shape != (n, 3) or self.displacements.shape != (n, 3):
            raise ValueError(
                f"expected (N, 3) points and displacements, got {self.points.shape}"
                f" and {self.displacements.shape}"
            )
        if self.offsets[0] != 0 or self.offsets[-1] != n or np.any(np.diff(self.offsets) < 1):
            raise ValueError(f"offsets: expected 0 < ... < {n}, increasing, got {self.offsets}")
        if not (np.isfinite(self.points).all() and np.isfinite(self.displacements).all()):
            raise ValueError("expected finite points and displacements")

    def __len__(self) -> int:
        return len(self.names)

    def field(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(points, displacements) of field ``k``, normalised frame."""
        a, b = int(self.offsets[k]), int(self.offsets[k + 1])
        return self.points[a:b], self.displacements[a:b]

    def subset(self, names: list[str]) -> ResidualLibrary:
        """The fields fitted to ``names``, in this library's order.

        Raises:
            ValueError: on a name the library does not hold, or none.
        """
        unknown = sorted(set(names) - set(self.names.tolist()))
        if unknown or not names:
            raise ValueError(f"expected names of this library's fields, got {unknown or names}")
        keep = [k for k in range(len(self)) if self.names[k] in set(names)]
        parts = [self.field(k) for k in keep]
        return ResidualLibrary(
            self.names[keep],
            self.levels[keep],
            np.concatenate([[0], np.cumsum([len(p) for p, _ in parts])]),
            np.concatenate([p for p, _ in parts]),
            np.concatenate([d for _, d in parts]),
        )

    def save(self, path: str | Path) -> None:
        np.savez_compressed(
            path,
            names=self.names.astype(str),
            levels=self.levels.astype(np.int64),
            offsets=self.offsets.astype(np.int64),
            points=self.points.astype(np.float32),
            displacements=self.displacements.astype(np.float32),
        )

    def content_sha256(self) -> str:
        """Hex sha256 of every field's name, shape and values (float32, as saved)."""
        h = hashlib.sha256()
        h.update("\0".join(str(n) for n in self.names).encode())
        for name, dtype in (
            ("levels", np.int64),
            ("offsets", np.int64),
            ("points", np.float32),
            ("displacements", np.float32),
        ):
            a = np.ascontiguousarray(getattr(self, name), dtype=dtype)
            h.update(f"{name}:{a.shape};".encode())
            h.update(a.tobytes())
        return h.hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> ResidualLibrary:
        """Read a library written by :meth:`save` (no pickles)."""
        with np.load(path, allow_pickle=False) as z:
            missing = {"names", "levels", "offsets", "points", "displacements"} - set(z.files)
            if missing:
                raise ValueError(f"{path}: expected a residual library, missing {sorted(missing)}")
            return cls(
                z["names"],
                z["levels"],
                z["offsets"],
                z["points"].astype(np.float64),
                z["displacements"].astype(np.float64),
            )


def library_sha256(path: str | Path) -> str:
    """Digest of a library file's fields (recorded with the data built from it).

    Taken over the arrays, not the file's bytes: NumPy writes the time into the archive,
    so two fits of the same vertebrae give files that differ and fields that do not.
    """
    return ResidualLibrary.load(path).content_sha256()


def field_displacement(
    vm: VertebraMesh, points: np.ndarray, displacements: np.ndarray, mirror: bool = False
) -> np.ndarray:
    """(V, 3) displacement in mm of ``vm``'s vertices by one normalised field.

    ``mirror`` flips the field left-right (a real vertebra's mirror image is as real).
    """
    c, axes, r = vertebra_frame(vm)
    z = (np.asarray(vm.vertices_mm, dtype=np.float64) - c) @ axes.T / r
    pts, disp = points, displacements
    if mirror:
        flip = np.array([-1.0, 1.0, 1.0])
        pts, disp = pts * flip, disp * flip
    k = min(NEIGHBOURS, len(pts))
    dist, idx = cKDTree(pts).query(z, k=k)
    dist, idx = dist.reshape(len(z), k), idx.reshape(len(z), k)
    # Weights relative to the nearest sample, so a vertex beyond the field's samples (a
    # target bigger than the source) takes the nearest ones' displacement, not zero.
    w = np.exp(-0.5 * (dist**2 - dist[:, :1] ** 2) / BLEND**2)
    d = np.einsum("vk,vkc->vc", w, disp[idx]) / w.sum(axis=1, keepdims=True)
    return (d @ axes) * r


def apply_field(vm: VertebraMesh, displacement_mm: np.ndarray) -> VertebraMesh:
    """``vm`` moved by a (V, 3) displacement; centroids follow their vertices' mean."""
    u = np.asarray(displacement_mm, dtype=np.float64)
    body = vm.part == Part.BODY
    return dataclasses.replace(
        vm,
        vertices_mm=vm.vertices_mm + u,
        centroid_mm=vm.centroid_mm + u.mean(axis=0),
        body_centroid_mm=vm.body_centroid_mm + (u[body].mean(axis=0) if body.any() else 0.0),
    )


def arch_weight(vm: VertebraMesh, ramp_mm: float = PART_RAMP_MM) -> np.ndarray:
    """(V,) weight in [0, 1]: 0 on the body, 1 on the posterior elements ``ramp_mm``
    or more from it, linear in the distance to the nearest body vertex between."""
    body = vm.part == Part.BODY
    w = np.ones(len(body))
    if body.any():
        d, _ = cKDTree(vm.vertices_mm[body]).query(vm.vertices_mm[~body])
        w[~body] = np.clip(d / ramp_mm, 0.0, 1.0)
        w[body] = 0.0
    return w


def residual_spine(
    spine: Spine,
    seed: int,
    library: ResidualLibrary,
    scale: tuple[float, float],
    parts: str = "all",
) -> Spine:
    """``spine`` with each vertebra moved by a random field of ``library``.

    Per vertebra (from ``seed`` and its level alone): a field drawn uniformly, mirrored
    with probability 1/2, its displacement scaled by a factor uniform in ``scale``;
    ``parts="arch"`` moves the posterior elements only (:func:`arch_weight`).
    """
    lo, hi = scale
    if not (0.0 <= lo <= hi <= 2.0):
        raise ValueError(f"scale: expected 0 <= low <= high <= 2, got {scale}")
    if parts not in PARTS:
        raise ValueError(f"parts: expected one of {PARTS}, got {parts!r}")
    out = {}
    for level, vm in spine.vertebrae.items():
        rng = np.random.default_rng([int(seed), int(level), 0x2E5])
        k = int(rng.integers(len(library)))
        mirror = bool(rng.integers(2))
        a = float(rng.uniform(lo, hi))
        u = field_displacement(vm, *library.field(k), mirror=mirror)
        if parts == "arch":
            u *= arch_weight(vm)[:, None]
        out[level] = apply_field(vm, a * u)
    return dataclasses.replace(spine, vertebrae=out)
