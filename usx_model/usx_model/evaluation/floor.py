"""The sampling floor of the metrics: what a prediction lying exactly on the bone scores.

Chamfer distance and F1 compare two finite point samples, so a perfect prediction does
not score zero. The floor here is an independent area-uniform sample of N points of the
*true* surface, scored like a network's prediction against the dataset's GT sample: the
figure an N-point prediction with no shape error at all would get (one whose points are
spaced more evenly than random samples can go slightly below it). It is how ratios of
errors are read: the floor sits in both, so it pulls every ratio towards 1.

Only phantom datasets (``usx dataset build``) carry their surfaces: each spine is
regenerated from the spine seeds in the file's attributes and its GT re-sampled with the
builder's seed. The regenerated GT must equal the stored one; otherwise the file was made
by another generator version and its floor would belong to other shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from usx_model.dataset.schema import read_attrs
from usx_model.evaluation.pipeline import EvalSet, reference_scale_mm, score_one
from usx_model.evaluation.stats import ANATOMICAL_SUBSETS, aggregate, metric_arrays

if TYPE_CHECKING:
    from usx_model.sim.phantom.types import Spine

#: Tolerance (mm) between a stored GT point and its regenerated twin (float32 storage).
_GT_MATCH_MM = 1e-3


def _sample_seed(spine_seed: int, level: int) -> int:
    """Seed of the floor's surface sample: a stream apart from the builder's ``seed + level``."""
    return int(np.random.SeedSequence([spine_seed, level, 0xF1]).generate_state(1)[0])


def spine_seeds(path: str | Path) -> dict[str, int]:
    """spine_id -> phantom seed of every spine of a ``usx dataset build`` file."""
    from usx_model.sim.phantom.spine import spine_id_for_seed

    attrs = read_attrs(path)
    seeds = attrs.get("spine_seeds")
    if not seeds:
        raise ValueError(
            f"{path}: no 'spine_seeds' attribute; the sampling floor needs a phantom dataset "
            "made by `usx dataset build` (its surfaces are regenerated from those seeds)"
        )
    return {spine_id_for_seed(int(s)): int(s) for s in seeds}


def floor_metrics(
    evalset: EvalSet,
    n_points: int,
    emd_points: int | None = None,
    progress: Callable[[int], None] | None = None,
    at_mean: Collection[str] = (),
) -> list[dict[str, float]]:
    """Per-vertebra metrics of an ``n_points`` sample of the true surface against the GT.

    With ``at_mean`` the sample comes from the same patient with those morphometry
    parameters at their mean given everything else (``generate_spine``): the score of an
    oracle that knows every shape parameter but these, e.g. the ones no view shows.

    Args:
        evalset: vertebrae of a phantom dataset file (``evaluation.pipeline.dataset_eval_set``,
            the set ``usx evaluate --data`` scores; the file is ``evalset.meta["data"]``).
        n_points: points of the surface sample (the predictions' count, e.g. 8192).
        emd_points: EMD subsample size, None to skip EMD.
        progress: called with the number of vertebrae done.
        at_mean: names from ``phantom.morphometry.PARAMETER_NAMES``.

    Returns:
        One ``metrics.vertebra.vertebra_metrics`` dict per vertebra, evalset order, scored
        exactly as ``usx evaluate`` scores a prediction (``evaluation.pipeline.score_one``).

    Raises:
        ValueError: n_points < 1, a set not read from a file, a file without spine seeds,
            a spine id the seeds do not give, or a regenerated GT that differs from the
            stored one.
    """
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.sim.scene import sample_surface

    if n_points < 1:
        raise ValueError(f"n_points: expected >= 1, got {n_points}")
    path = evalset.meta.get("data")
    if path is None or evalset.gt_part is None:
        raise ValueError("the sampling floor needs vertebrae read from a phantom dataset file")
    seeds = spine_seeds(path)
    scale_mm = reference_scale_mm(evalset.us)
    spines: dict[int, tuple[Spine, Spine]] = {}  # seed -> (true, sampled)
    rows = []
    for i, (name, level) in enumerate(zip(evalset.names, evalset.levels, strict=True)):
        spine_id = name.rsplit("-L", 1)[0]  # EvalSet names are <spine_id>-L<level>
        if spine_id not in seeds:
            raise ValueError(f"{path}: vertebra {name}: spine {spine_id} is not in spine_seeds")
        seed = seeds[spine_id]
        if seed not in spines:
            # rows come grouped by spine: keep only the current one in memory
            true = generate_spine(seed)
            spines = {seed: (true, generate_spine(seed, at_mean=at_mean) if at_mean else true)}
        vert, sampled = (s.vertebrae[int(level)] for s in spines[seed])
        gt = evalset.gt[i]
        regenerated, _ = sample_surface(vert, len(gt), seed=seed + int(level))
        err = float(np.abs(regenerated - gt).max())
        if err > _GT_MATCH_MM:
            raise ValueError(
                f"{path}: vertebra {name}: the regenerated GT differs from the stored one by "
                f"up to {err:.3g} mm; the file was made by another phantom version"
            )
        sample, _ = sample_surface(sampled, n_points, seed=_sample_seed(seed, int(level)))
        rows.append(score_one(sample, evalset, i, float(scale_mm[i]), emd_points))
        if progress is not None:
            progress(i + 1)
    return rows


def summarise_floor(
    rows: list[dict[str, float]], n_points: int, at_mean: Collection[str] = ()
) -> dict:
    """``{"n_points", "n_vertebrae", "at_mean", subset: {metric: {"mean", "std", "median",
    "n"}}}``."""
    values = metric_arrays(rows, ANATOMICAL_SUBSETS)
    out: dict = {"n_points": int(n_points), "n_vertebrae": len(rows), "at_mean": sorted(at_mean)}
    out.update({s: {k: aggregate(v) for k, v in per.items()} for s, per in values.items()})
    return out
