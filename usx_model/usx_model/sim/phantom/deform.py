"""Smooth random non-rigid deformation of phantom vertebrae (training-data randomisation).

The procedural phantom builds each vertebra from a few dozen primitives, so its shapes are
smoother and more alike than real bone (measured in docs/results.md, "Where the
real-anatomy gap comes from"). A smooth random displacement field applied to each vertebra
before its views are simulated widens the shape distribution the network is trained on
without using any real surface. Views and ground truth are simulated on the
deformed mesh, so they stay consistent.

The field is a sum of Gaussian radial basis functions with random vector weights, centred
on random vertices of the vertebra, scaled so that its root-mean-square displacement over
the vertices is exactly ``amplitude_mm``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from usx_model.base.parts import Part
from usx_model.sim.phantom.types import Spine

#: RBF centres per vertebra: enough for independent bends of body, pedicles and processes.
N_CENTRES = 24


def smooth_displacement(
    vertices_mm: np.ndarray,
    rng: np.random.Generator,
    amplitude_mm: float,
    length_mm: float,
    n_centres: int = N_CENTRES,
) -> np.ndarray:
    """(V, 3) displacement (mm) of a random smooth field at ``vertices_mm`` (V, 3, mm).

    Args:
        vertices_mm: where the field is evaluated.
        rng: the only source of randomness.
        amplitude_mm: root-mean-square displacement over the vertices (>= 0).
        length_mm: the RBFs' standard deviation (> 0): displacements of points closer
            than this are strongly correlated.
        n_centres: RBF centres, drawn among the vertices (>= 1).

    Raises:
        ValueError: on a bad argument.
    """
    v = np.asarray(vertices_mm, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices_mm: expected (V, 3) with V >= 1, got {v.shape}")
    if not (amplitude_mm >= 0 and np.isfinite(amplitude_mm)):
        raise ValueError(f"amplitude_mm: expected a finite value >= 0, got {amplitude_mm}")
    if not (length_mm > 0 and np.isfinite(length_mm)):
        raise ValueError(f"length_mm: expected a finite value > 0, got {length_mm}")
    if n_centres < 1:
        raise ValueError(f"n_centres: expected >= 1, got {n_centres}")
    centres = v[rng.integers(0, len(v), n_centres)]
    weights = rng.normal(size=(n_centres, 3))
    if amplitude_mm == 0:
        return np.zeros_like(v)
    d2 = np.sum((v[:, None, :] - centres[None, :, :]) ** 2, axis=2)
    field = np.exp(-0.5 * d2 / length_mm**2) @ weights
    rms = np.sqrt(np.mean(np.sum(field**2, axis=1)))
    return field * (amplitude_mm / rms) if rms > 0 else field


def deform_spine(spine: Spine, seed: int, amplitude_mm: float, length_mm: float) -> Spine:
    """``spine`` with every vertebra deformed by its own :func:`smooth_displacement`.

    Centroids follow the mean displacement of their vertebra (the body centroid that of
    the body's vertices); part labels and faces are unchanged. ``amplitude_mm == 0``
    returns the spine itself.
    """
    if amplitude_mm == 0:
        return spine
    out = {}
    for level, vm in spine.vertebrae.items():
        rng = np.random.default_rng([int(seed), int(level), 0xDEF])
        u = smooth_displacement(vm.vertices_mm, rng, amplitude_mm, length_mm)
        body = vm.part == Part.BODY
        out[level] = dataclasses.replace(
            vm,
            vertices_mm=vm.vertices_mm + u,
            centroid_mm=vm.centroid_mm + u.mean(axis=0),
            body_centroid_mm=vm.body_centroid_mm + (u[body].mean(axis=0) if body.any() else 0.0),
        )
    return dataclasses.replace(spine, vertebrae=out)
