"""The completed spine under real lab conditions, end to end, over unseen phantom seeds.

For each seed, ``usx pipeline`` (``evaluation.offline.run_offline``) runs the still,
ideally calibrated patient and then each condition: breathing (with and without the
compensation), 10 % of the frames with the probe off the skin, and the patient shifted
between the X-ray and the sweep (a curve over sizes, completing the still run's bone
points with each shifted X-ray). Each figure is the mean CD-L1 over L1-L5 against the
phantom's surface; a condition's ratio is taken per seed against the still run of that
seed, then summarised (median, mean +- std).

The X-ray is re-registered to the US bone points before it is placed
(``registration.xray_us``) unless ``--no-xray-registration``.

The default seeds 2301-2310 are not training spines: those are drawn from
``SeedSequence([dataset seed, index])`` (``dataset.builder.spine_seed``), 32-bit numbers.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from usx_model.dataset.builder import spine_seed
from usx_model.evaluation.offline import run_offline
from usx_model.network.weights import load_weights
from usx_model.sim.conditions import ChainConditions
from usx_model.sim.phantom.spine import generate_spine
from usx_model.weights import shipped_weights

#: condition name -> (conditions, breathing compensation on)
CONDITIONS = {
    "breathing_compensated": (ChainConditions(breathing_mm=3.0, breathing_hz=0.25), True),
    "breathing_raw": (ChainConditions(breathing_mm=3.0, breathing_hz=0.25), False),
    "contact_loss_10pct": (ChainConditions(contact_loss_frac=0.1), True),
}
#: the issue's targets: ratio to the still run, per condition
TARGETS = {
    "breathing_compensated": 1.10,
    "contact_loss_10pct": 1.05,
    "xray_shift_5mm_3deg": 1.15,
}
SHIFTS_MM = (0.0, 2.5, 5.0, 7.5, 10.0)
SHIFTS_DEG = (1.5, 3.0, 4.5, 6.0)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seeds",
        type=_seeds,
        default=tuple(range(2301, 2311)),
        metavar="A-B|A,B,...",
        help="phantom seeds (default 2301-2310, never training spines)",
    )
    p.add_argument(
        "--no-xray-registration",
        action="store_true",
        help="place the X-ray without re-registering it to the US bone points",
    )
    p.add_argument(
        "--conditions",
        default=",".join(CONDITIONS),
        help=f"comma-separated subset of {', '.join(CONDITIONS)} ('' = only the X-ray curve)",
    )


def _seeds(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            a, b = (int(v) for v in text.split("-"))
            return tuple(range(a, b + 1))
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A-B or A,B,..., got {text!r}") from None


def _summary(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {
        "median": float(np.median(v)),
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "max": float(v.max()),
        "n": len(v),
    }


def run(args: argparse.Namespace) -> dict:
    """Per-seed figures and their summaries; see the module docstring."""
    names = [c for c in args.conditions.split(",") if c]
    unknown = set(names) - set(CONDITIONS)
    if unknown:
        raise SystemExit(f"usx measure chain: unknown conditions {sorted(unknown)}")
    training = {spine_seed(1, i) for i in range(200)}
    if training & set(args.seeds):
        raise SystemExit(f"seeds {sorted(training & set(args.seeds))} are training spines")
    full = load_weights(shipped_weights("full"))
    us_only = load_weights(shipped_weights("us_only"))
    shifts = [(mm, 0.0) for mm in SHIFTS_MM] + [(0.0, d) for d in SHIFTS_DEG] + [(5.0, 3.0)]
    per_seed = []
    for seed in args.seeds:
        spine = generate_spine(seed)
        row = {"seed": seed}
        reg = not args.no_xray_registration
        still = run_offline(
            spine, full, us_only, seed=seed, xray_shifts=shifts, xray_registration=reg
        ).report
        row["still"] = still["completion"]["cd_l1_mm"]
        row["ideal_partials"] = still["completion_ideal"]["cd_l1_mm"]
        row["still_breathing_fit"] = still["bone_points"]["breathing"]
        row["xray_shift"] = still["xray_shift_curve"]
        for name in names:
            cond, compensate = CONDITIONS[name]
            r = run_offline(
                spine,
                full,
                us_only,
                seed=seed,
                conditions=cond,
                breathing_compensation=compensate,
                xray_registration=reg,
            ).report
            row[name] = r["completion"]["cd_l1_mm"]
            row[f"{name}_detail"] = {
                "breathing": r["bone_points"]["breathing"],
                "frames_dropped": r["bone_points"]["frames_dropped"],
                "frames_partial_contact": r["bone_points"]["frames_partial_contact"],
                "frames_with_air": r["conditions"]["frames_with_air"],
                "status": r["completion"]["status"],
            }
        print(
            f"seed {seed}: " + ", ".join(f"{k} {row[k]:.3f}" for k in ["still", *names]),
            file=sys.stderr,
        )
        per_seed.append(row)
    return {
        "seeds": list(args.seeds),
        "per_seed": per_seed,
        "summary": _summarise(per_seed, names, shifts),
    }


def _summarise(rows: list[dict], names: list[str], shifts: list[tuple[float, float]]) -> dict:
    out = {
        "still_cd_l1_mm": _summary([r["still"] for r in rows]),
        "still_compensation_applied": sum(r["still_breathing_fit"]["applied"] for r in rows),
        "ideal_partials_cd_l1_mm": _summary([r["ideal_partials"] for r in rows]),
    }
    for name in names:
        ratio = [r[name] / r["still"] for r in rows]
        out[name] = {"cd_l1_mm": _summary([r[name] for r in rows]), "ratio": _summary(ratio)}
    curve = []
    for i, (mm, deg) in enumerate(shifts):
        cd = [r["xray_shift"][i]["cd_l1_mm"] for r in rows]
        ok = [sum(s == "ok" for s in r["xray_shift"][i]["status"].values()) for r in rows]
        curve.append(
            {
                "xray_shift_mm": mm,
                "xray_shift_deg": deg,
                "cd_l1_mm": _summary(cd),
                "ratio": _summary([c / r["still"] for c, r in zip(cd, rows, strict=True)]),
                "levels_ok": int(sum(ok)),
                "levels": 5 * len(rows),
            }
        )
    out["xray_shift_curve"] = curve
    out["xray_shift_5mm_3deg"] = curve[-1]
    out["targets"] = {
        name: {
            "ratio_median": out[name]["ratio"]["median"],
            "target": target,
            "met": out[name]["ratio"]["median"] <= target,
        }
        for name, target in TARGETS.items()
        if name in out
    }
    return out
