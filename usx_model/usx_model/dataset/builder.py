"""Build a completion dataset from phantom spines: ``usx dataset build``.

Per spine (deterministic from the dataset seed and the spine's index):

1. ``phantom.spine.generate_spine`` — meshes with part labels, mm, LPS spine frame;
2. ``simulate.us_partial.simulate_us_partials`` — physics-aware ray-cast US partial per
   level (crop box with neighbours, noise), FPS-resampled to ``n_partial`` points;
3. ``simulate.xray.xray_points_25d`` — the lateral X-ray's 2.5D body points per level,
   FPS-resampled to ``n_xray``;
4. ``simulate.scene.sample_surface`` — ``n_gt`` area-uniform GT surface samples with
   part labels;
5. the observation-only normaliser of ``network.prepare`` (stored for reference; training
   recomputes it with the same code).

Splits are by spine: the first ``train`` fraction of spine indices is train, then val,
then test (or every spine in one split with ``split=...``), so no spine's vertebrae are
in two splits. Spines are built in parallel worker processes.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from usx_model import __version__
from usx_model.dataset.schema import SPLITS, VertebraSamples, write_samples


@dataclass(frozen=True)
class BuildOptions:
    """How samples are made (stored in the file's attributes).

    Attributes:
        n_partial, n_xray, n_gt: points per sample of US partial, X-ray and GT.
        split: None for by-fraction splits, else one of train/val/test for every spine.
        fractions: (train, val, test) fractions of spines when ``split`` is None.
        norm_points: Np of the stored reference normaliser (the compact network's).
        deform_mm, deform_length_mm: RMS amplitude and length scale of the smooth random
            deformation of every vertebra before its views are simulated
            (``sim.phantom.deform``); 0 leaves the phantom as generated.
        residuals: a residual field library (``sim.phantom.residual``; ``usx phantom
            residuals``) whose random fields move every vertebra before its views are
            simulated, or None.
        residuals_sha256: that library's content digest (``ResidualLibrary.content_sha256``;
            checked when a worker loads it).
        residual_scale: each field's factor is drawn uniformly in this range.
        residual_parts: ``"all"``, or ``"arch"`` to move the posterior elements only.
    """

    n_partial: int = 1024
    n_xray: int = 512
    n_gt: int = 8192
    split: str | None = None
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    norm_points: int = 512
    deform_mm: float = 0.0
    deform_length_mm: float = 12.0
    residuals: str | None = None
    residuals_sha256: str | None = None
    residual_scale: tuple[float, float] = (0.5, 1.0)
    residual_parts: str = "all"

    def __post_init__(self) -> None:
        lo, hi = self.residual_scale
        if not (0.0 <= lo <= hi <= 2.0):
            raise ValueError(f"residual_scale: expected 0 <= low <= high <= 2, got {(lo, hi)}")
        if self.residual_parts not in ("all", "arch"):
            raise ValueError(f"residual_parts: expected all or arch, got {self.residual_parts!r}")
        if self.residuals is not None and not Path(self.residuals).is_file():
            raise ValueError(f"residuals: no such library file: {self.residuals}")
        if not (0.0 <= self.deform_mm <= 5.0):
            raise ValueError(f"deform_mm: expected 0..5 mm, got {self.deform_mm}")
        if not (self.deform_length_mm > 0.0):
            raise ValueError(f"deform_length_mm: expected > 0 mm, got {self.deform_length_mm}")
        for name in ("n_partial", "n_xray", "n_gt", "norm_points"):
            if int(getattr(self, name)) < 16:
                raise ValueError(f"{name}: expected >= 16, got {getattr(self, name)}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split: expected one of {SPLITS}, got {self.split!r}")
        f = self.fractions
        if len(f) != 3 or min(f) < 0 or abs(sum(f) - 1.0) > 1e-6:
            raise ValueError(f"fractions: expected 3 non-negative values summing to 1, got {f}")


def spine_seed(dataset_seed: int, index: int) -> int:
    """The phantom seed of spine ``index`` of a dataset; distinct datasets, distinct spines."""
    return int(np.random.SeedSequence([int(dataset_seed), int(index)]).generate_state(1)[0])


def assign_splits(n_spines: int, options: BuildOptions) -> list[str]:
    """Split name per spine index (by spine, in index order)."""
    if options.split is not None:
        return [options.split] * n_spines
    n_train = round(options.fractions[0] * n_spines)
    n_val = round(options.fractions[1] * n_spines)
    out = ["train"] * n_train + ["val"] * n_val
    return out + ["test"] * (n_spines - len(out))


def _fps(points: np.ndarray, n: int) -> np.ndarray:
    """FPS ``points`` to exactly n (cyclic repeats of the FPS order when fewer)."""
    from usx_model.network.prepare import resample

    return resample([points], n)[0]


_LIBRARIES: dict = {}


def _library(options: BuildOptions):
    """The options' residual library, loaded once per process and checked by digest."""
    from usx_model.sim.phantom.residual import ResidualLibrary

    key = (options.residuals, options.residuals_sha256)
    if key not in _LIBRARIES:
        library = ResidualLibrary.load(options.residuals)
        digest = library.content_sha256()
        if options.residuals_sha256 and digest != options.residuals_sha256:
            raise ValueError(
                f"{options.residuals}: expected sha256 {options.residuals_sha256}, got {digest}"
            )
        _LIBRARIES[key] = library
    return _LIBRARIES[key]


def build_spine_samples(seed: int, split: str, options: BuildOptions) -> dict[str, np.ndarray]:
    """All samples (one per level) of the spine generated from ``seed``; arrays stacked."""
    from usx_model.network.prepare import prepare_observations
    from usx_model.sim.phantom.deform import deform_spine
    from usx_model.sim.phantom.spine import generate_spine
    from usx_model.sim.scene import sample_surface
    from usx_model.sim.us_partial import simulate_us_partials
    from usx_model.sim.xray import xray_points_25d

    spine = deform_spine(generate_spine(seed), seed, options.deform_mm, options.deform_length_mm)
    if options.residuals is not None:
        from usx_model.sim.phantom.residual import residual_spine

        spine = residual_spine(
            spine, seed, _library(options), options.residual_scale, options.residual_parts
        )
    partials = simulate_us_partials(spine, seed=seed)
    xrays = xray_points_25d(spine, jitter_seed=seed)
    rows: dict[str, list] = {k: [] for k in ("us_partial", "xray", "gt", "gt_part", "level")}
    for level in spine.levels:
        gt, part = sample_surface(spine.vertebrae[level], options.n_gt, seed=seed + level)
        rows["us_partial"].append(_fps(partials[level].points_mm, options.n_partial))
        rows["xray"].append(_fps(xrays[level], options.n_xray))
        rows["gt"].append(gt)
        rows["gt_part"].append(part)
        rows["level"].append(level)
    out = {k: np.stack(v) for k, v in rows.items()}
    obs = prepare_observations(
        list(out["us_partial"]), None, options.norm_points, options.n_xray, use_xray=False
    )
    out["norm_centre_mm"] = np.stack([n.centre_mm for n in obs.normalisers])
    out["norm_scale_mm"] = np.array([n.scale_mm for n in obs.normalisers])
    out["spine_id"] = np.array([spine.spine_id] * len(spine.levels))
    out["split"] = np.array([split] * len(spine.levels))
    return out


def _worker(job: tuple[int, int, str, BuildOptions]) -> tuple[int, dict[str, np.ndarray]]:
    index, seed, split, options = job
    return index, build_spine_samples(seed, split, options)


def _init_worker() -> None:
    # Each worker is one of K processes on the cores: no nested thread pools.
    import torch

    torch.set_num_threads(1)


def build_dataset(
    out: str | Path,
    n_spines: int,
    seed: int,
    options: BuildOptions | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
) -> VertebraSamples:
    """Generate ``n_spines`` spines, simulate their views and write ``out`` (HDF5).

    Args:
        out: output file (written atomically).
        n_spines: number of spines (>= 1); 5 samples each.
        seed: dataset seed; spine i uses ``spine_seed(seed, i)``.
        options: sample sizes and splits.
        workers: worker processes (1 = in this process).
        progress: called with the number of finished spines after each one.

    Raises:
        ValueError: bad counts or options.
    """
    options = options or BuildOptions()
    if n_spines < 1:
        raise ValueError(f"--spines: expected >= 1, got {n_spines}")
    if workers < 1:
        raise ValueError(f"--workers: expected >= 1, got {workers}")
    splits = assign_splits(n_spines, options)
    jobs = [(i, spine_seed(seed, i), splits[i], options) for i in range(n_spines)]
    results: dict[int, dict[str, np.ndarray]] = {}
    if workers == 1:
        for job in jobs:
            index, res = _worker(job)
            results[index] = res
            if progress:
                progress(len(results))
    else:
        # spawn: torch/open3d thread pools in a forked child can deadlock.
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(workers, n_spines), initializer=_init_worker) as pool:
            for index, res in pool.imap_unordered(_worker, jobs):
                results[index] = res
                if progress:
                    progress(len(results))
    merged = {k: np.concatenate([results[i][k] for i in range(n_spines)]) for k in results[0]}
    samples = VertebraSamples(**merged)
    attrs = {
        "seed": int(seed),
        "n_spines": int(n_spines),
        "spine_seeds": [j[1] for j in jobs],
        "options": asdict(options),
        "usx_version": __version__,
        "generator": "usx-phantom-1",
        "frame": "spine LPS, mm (not normalised)",
    }
    write_samples(out, samples, attrs)
    return samples
