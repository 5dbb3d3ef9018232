"""``usx bench segmentation``: per-frame time and 3D accuracy of the bone segmentation.

Renders transverse B-mode sweeps (512 x 512, ``simulate.bmode``) of phantom spines,
segments every frame with ``segmentation.bone.segment_bone`` and reports

- ``median_ms_per_frame``: median wall time of one ``segment_bone`` call (all frames,
  ``--runs`` repeats), and ``median_cpu_ms_per_frame``, the process CPU time of the same
  calls (less sensitive to other load on a shared machine), with 90th percentiles;
- ``accuracy``: ``segmentation.evaluate`` figures pooled over all sweeps (distance of the
  segmented points to the mesh, recall of the US-visible ground-truth surface).

Spines (``--spine-source``): ``phantom`` = ``usx_model.sim.phantom.spine.generate_spine(seed)``;
``stacked`` = the phantom's procedural vertebrae of one patient seed
(``sample_spine_morphometry`` + ``vertebra_mesh``) stacked straight along z with 10 mm
discs; ``verse004`` = the real VerSe sample spine (evaluation data; seed ignored);
``auto`` = ``phantom`` when that generator is installed, else ``stacked``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time

import numpy as np

from usx_model.sim.phantom.types import Spine, VertebraMesh

NAME = "segmentation"
HELP = "per-frame time and 3D accuracy of the automatic bone segmentation"

SOURCES = ("auto", "phantom", "stacked", "verse004")
_DISC_MM = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=5000, help="first spine seed (default 5000)")
    parser.add_argument("--spines", type=int, default=1, help="number of spines (default 1)")
    parser.add_argument("--frames", type=int, default=120, help="frames per sweep (default 120)")
    parser.add_argument("--runs", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument(
        "--spine-source", choices=SOURCES, default="auto", help="where spines come from"
    )


def stacked_spine(seed: int, spacing_mm: float = 0.8) -> Spine:
    """L1-L5 procedural vertebrae of one patient seed, stacked straight along z (LPS, mm).

    Each vertebra (own frame, body centre at the origin) is shifted down by half its body
    height, a ``_DISC_MM`` disc and half the next one's, L1 on top at z = 0.
    """
    from usx_model.sim.phantom.morphometry import sample_spine_morphometry
    from usx_model.sim.phantom.vertebra_mesh import MeshOptions, vertebra_mesh

    _, params = sample_spine_morphometry(np.random.default_rng(seed))
    vertebrae, z = {}, 0.0
    for level in (1, 2, 3, 4, 5):
        half = 0.5 * params[level]["body_height_mm"]
        z -= half if level > 1 else 0.0
        vm = vertebra_mesh(params[level], level, MeshOptions(spacing_mm))
        shift = np.array([0.0, 0.0, z])
        vertebrae[level] = VertebraMesh(
            level,
            vm.vertices_mm + shift,
            vm.faces,
            vm.part,
            vm.centroid_mm + shift,
            vm.body_centroid_mm + shift,
        )
        z -= half + _DISC_MM
    return Spine(f"stacked-s{seed:04d}", vertebrae, params={"seed": seed}, frames={})


def resolve_source(source: str) -> str:
    """``auto`` -> ``phantom`` if ``usx_model.sim.phantom.spine`` is installed, else ``stacked``."""
    if source not in SOURCES:
        raise ValueError(f"expected a spine source in {SOURCES}, got {source!r}")
    if source != "auto":
        return source
    return "phantom" if importlib.util.find_spec("usx_model.sim.phantom.spine") else "stacked"


def load_spine(source: str, seed: int) -> Spine:
    """The spine of ``seed`` from a resolved source (see the module docstring)."""
    if source == "phantom":
        from usx_model.sim.phantom.spine import generate_spine

        return generate_spine(seed)
    if source == "stacked":
        return stacked_spine(seed)
    if source == "verse004":
        from usx_model.evaluation.real import REAL_ROOT
        from usx_model.sim.phantom.verse import load_verse_spine

        return load_verse_spine(
            os.path.join(REAL_ROOT, "verse_sub-verse004", "sub-verse004_seg-vert_msk.nii.gz"),
            os.path.join(REAL_ROOT, "verse_sub-verse004", "sub-verse004_seg-subreg_ctd.json"),
        )
    raise ValueError(f"expected a resolved spine source, got {source!r}")


def run(args: argparse.Namespace) -> dict:
    from usx_model.evaluation.segmentation import SweepMeasures, measure_sweep
    from usx_model.segmentation.bone import BoneSegParams, segment_bone
    from usx_model.sim.bmode import BModeSimulator
    from usx_model.sim.probe import ProbeModel, sweep_poses

    if args.spines < 1 or args.frames < 1 or args.runs < 1:
        raise ValueError(
            f"--spines, --frames and --runs must be >= 1, got "
            f"{args.spines}, {args.frames}, {args.runs}"
        )
    source = resolve_source(args.spine_source)
    probe = ProbeModel()
    params = BoneSegParams(pixel_mm=(probe.pixel_mm, probe.pixel_mm))
    wall_ms, cpu_ms, per_spine = [], [], []
    for seed in range(args.seed, args.seed + args.spines):
        spine = load_spine(source, seed)
        frames = BModeSimulator(spine, probe, seed=seed).render_sweep(
            sweep_poses(spine, args.frames)
        )
        segment_bone(frames[0].image, params)  # warm-up
        for _ in range(args.runs):
            segs = []
            for frame in frames:
                t0, c0 = time.perf_counter(), time.process_time()
                segs.append(segment_bone(frame.image, params))
                wall_ms.append(1e3 * (time.perf_counter() - t0))
                cpu_ms.append(1e3 * (time.process_time() - c0))
        per_spine.append(measure_sweep(spine, frames, segs, probe))
    pooled = SweepMeasures.concat(per_spine).summary()
    return {
        "spine_source": source,
        "seeds": [args.seed, args.seed + args.spines - 1],
        "frames_per_sweep": args.frames,
        "image_shape": list(probe.shape),
        "median_ms_per_frame": statistics.median(wall_ms),
        "p90_ms_per_frame": float(np.percentile(wall_ms, 90)),
        "median_cpu_ms_per_frame": statistics.median(cpu_ms),
        "p90_cpu_ms_per_frame": float(np.percentile(cpu_ms, 90)),
        "accuracy": {**pooled.as_dict(), "meets_targets": pooled.meets_targets()},
        "accuracy_per_spine": [m.summary().as_dict() for m in per_spine],
    }
