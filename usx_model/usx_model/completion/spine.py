"""Complete a whole lumbar spine from intra-operative observations (base frame, mm).

The stages, each a core function of its own module:

1. anatomical frame: the spine's cranio-caudal axis from the US bone points (principal
   axis), signs and the posterior direction from the patient prior (how the patient
   lies relative to the robot), ``estimate_anatomical_frame``;
2. X-ray points per level: label pixels cut with the lateral placement plane (CBCT
   registered, or the paper's US mid-extent heuristic), ``ingest.xray_points``;
3. level split of the US bone points around the X-ray body centroids, or the US-only
   fallback, ``levels``;
4. per level, the crop the network was trained on: every bone point in a fixed box
   (neighbours included, as in the simulator) around the vertebra's estimated centroid;
5. the network, batched over levels: the full model where a level has X-ray points,
   the US-only baseline where it has none (``network.inference.complete`` with the
   anatomical rotation), with per-point uncertainty from posterior samples;
6. the quality gate: status and confidence of each vertebra from its inputs and output
   (``completion.quality``), so that a vertebra the inputs cannot determine is never ``ok``;
7. optionally (``us_snap_mm``), the predicted points near the level's own US bone points (of
   the split) moved onto their surface (``network.us_consistency``), after the gate has
   judged the network's own output; then each point's published error scale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from usx_model.base.crop import CROP_SIZE_MM
from usx_model.base.points import thin_points
from usx_model.completion.error_scale import ErrorScale, load_error_scale
from usx_model.completion.quality import assess, level_frame, quality_features
from usx_model.ingest.xray_points import (
    level_centroids,
    level_midplanes,
)
from usx_model.levels.refine import NeighbourGraph, neighbour_graph
from usx_model.levels.split import split_levels_xray
from usx_model.levels.us_only import split_levels_us_only
from usx_model.network.inference import complete
from usx_model.network.model import USXComplete
from usx_model.network.prepare import MIN_POINTS
from usx_model.network.us_consistency import snap_to_us_surface

#: Vertebra centroid lies this far anterior of the US-visible arch points (phantom mean).
ARCH_TO_CENTROID_MM = 20.0


@dataclass(frozen=True)
class PatientPrior:
    """Rough patient orientation in the base frame (from the OR set-up / table pose).

    Attributes:
        cranial: (3,) direction towards the head.
        posterior: (3,) direction from the spine towards the skin the probe touches.
    """

    cranial: np.ndarray
    posterior: np.ndarray


@dataclass
class LevelCompletion:
    """One completed vertebra, base frame, mm."""

    level: int
    points_mm: np.ndarray
    uncertainty_mm: np.ndarray  # (N,) the published error scale (.error_scale), mm
    used_xray: bool
    n_us: int
    n_xray: int
    status: str = "ok"  # ok | us_only_fallback | insufficient_* | low_confidence (.quality)
    message: str = ""
    confidence: float = 0.0
    quality: dict[str, float] = field(default_factory=dict)
    spread_mm: np.ndarray | None = None  # (N,) raw posterior spread (the gate's feature)
    us_only_mm: np.ndarray | None = None  # (M, 3) US-only prediction (the gate's level check)


@dataclass
class SpineCompletionResult:
    """All levels, the frame used, the (thinned) bone points with their level labels
    (0 = outside every level's box) and stage timings (s)."""

    levels: list[LevelCompletion]
    R_base_lps: np.ndarray
    points_mm: np.ndarray
    point_level: np.ndarray
    xray_points_mm: dict[int, np.ndarray]
    timings_s: dict[str, float]


@dataclass(frozen=True)
class PreparedPoints:
    """What :meth:`SpineCompleter.complete` derives from the bone points alone, made
    beforehand (:meth:`SpineCompleter.prepare`) while the X-ray is still being placed.

    Attributes:
        source: the bone points array it was made from (checked by identity: the
            same array object, as a node holds it between the two calls).
        prior: the prior it was made with.
        points_mm: (N, 3) thinned points.
        R_base_lps: (3, 3) anatomical frame.
        graph: the level split's neighbour graph of ``points_mm``.
    """

    source: np.ndarray
    prior: PatientPrior
    points_mm: np.ndarray
    R_base_lps: np.ndarray
    graph: NeighbourGraph


def _unit(v: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64).reshape(-1)
    if v.shape != (3,) or not np.isfinite(v).all() or np.linalg.norm(v) < 1e-9:
        raise ValueError(f"{name}: expected a non-zero finite 3-vector, got {v}")
    return v / np.linalg.norm(v)


def estimate_anatomical_frame(bone_points_mm: np.ndarray, prior: PatientPrior) -> np.ndarray:
    """(3, 3) rows = L, P, S axes of the spine in the base frame.

    S is the principal axis of the bone points (a lumbar sweep is longest cranio-caudally)
    signed by the prior; P is the prior's posterior direction made orthogonal to S;
    L = P x S (LPS is right-handed).
    """
    p = np.asarray(bone_points_mm, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3 or len(p) < 10:
        raise ValueError(f"expected at least 10 (N, 3) bone points, got {p.shape}")
    cranial, posterior = _unit(prior.cranial, "cranial"), _unit(prior.posterior, "posterior")
    w, v = np.linalg.eigh(np.cov((p - p.mean(0)).T))
    s = v[:, np.argmax(w)]
    s = s if s @ cranial >= 0 else -s
    post = posterior - (posterior @ s) * s
    post = _unit(post, "posterior (orthogonal to the spine axis)")
    return np.stack([np.cross(post, s), post, s])


def crop_box(points_mm: np.ndarray, centre_mm: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Bool mask of points inside the training crop box (``CROP_SIZE_MM``) at centre_mm."""
    local = (points_mm - centre_mm) @ R.T
    return np.all(np.abs(local) <= np.asarray(CROP_SIZE_MM) / 2.0, axis=1)


class SpineCompleter:
    """Runs stages 1-5 with a full model and a US-only model.

    Args:
        model_full: the X-ray model (None: every level uses the US-only model).
        model_us_only: the US-only baseline (None: levels without X-ray are skipped).
        device: torch device for the network.
        n_samples: posterior samples for the per-point uncertainty (0: zeros).
        error_scale: turns each point's posterior spread and distance to the level's US
            points into the published uncertainty (``completion.error_scale``; default
            the shipped coefficients).
        us_snap_mm: move predicted points within this of the level's own US points (of the
            split) onto their surface (``network.us_consistency``; 0 = off, the network's
            output as it is).
    """

    def __init__(
        self,
        model_full: USXComplete | None,
        model_us_only: USXComplete | None,
        device: str = "cpu",
        n_samples: int = 4,
        error_scale: ErrorScale | None = None,
        us_snap_mm: float = 0.0,
    ) -> None:
        if model_full is None and model_us_only is None:
            raise ValueError("SpineCompleter needs at least one model")
        if not us_snap_mm >= 0:
            raise ValueError(f"us_snap_mm: expected >= 0, got {us_snap_mm}")
        self.us_snap_mm = float(us_snap_mm)
        self.model_full = model_full
        self.model_us_only = model_us_only
        self.device = device
        self.n_samples = int(n_samples)
        self.error_scale = error_scale if error_scale is not None else load_error_scale()

    def warm_up(self) -> None:
        """One throw-away pass of each model on a synthetic cloud (first-call costs)."""
        rng = np.random.default_rng(0)
        cloud = rng.normal(0.0, 20.0, (600, 3))
        for model, xray in ((self.model_full, cloud[:300]), (self.model_us_only, None)):
            if model is not None:
                complete(
                    [cloud],
                    None if xray is None else [xray],
                    ["warm-up"],
                    model,
                    device=self.device,
                    n_samples=self.n_samples,
                )

    def prepare(self, bone_points_mm: np.ndarray, prior: PatientPrior) -> PreparedPoints:
        """The X-ray-independent part of :meth:`complete` (thinning, frame, the split's
        graph), for a caller that has the bone points before the placed X-ray."""
        pts = thin_points(bone_points_mm)
        R = estimate_anatomical_frame(pts, prior)
        return PreparedPoints(bone_points_mm, prior, pts, R, neighbour_graph(pts))

    def complete(
        self,
        bone_points_mm: np.ndarray,
        prior: PatientPrior,
        xray_points_mm: dict[int, np.ndarray] | None = None,
        levels: tuple[int, ...] = (1, 2, 3, 4, 5),
        use_xray: bool = True,
        prepared: PreparedPoints | None = None,
    ) -> SpineCompletionResult:
        """Complete ``levels`` from the sweep's bone points and placed X-ray points.

        Args:
            bone_points_mm: (N, 3) US bone points of the sweep, base frame.
            prior: rough patient orientation.
            xray_points_mm: level -> (M, 3) X-ray body points in the base frame
                (``completion.xray_placement.place_xray``), or None.
            levels: levels to complete.
            use_xray: False forces the US-only model everywhere.
            prepared: :meth:`prepare` of these bone points and prior, or None (the
                result is the same either way).

        Raises:
            ValueError: too few bone points (the caller reports it); ``prepared`` made
                from other bone points or another prior.
        """
        t = {"start": time.perf_counter()}
        graph = None
        if prepared is not None:
            same_prior = all(
                np.array_equal(getattr(prepared.prior, k), getattr(prior, k))
                for k in ("cranial", "posterior")
            )
            if prepared.source is not bone_points_mm or not same_prior:
                raise ValueError("prepared: made from other bone points or another prior")
            pts, R, graph = prepared.points_mm, prepared.R_base_lps, prepared.graph
        else:
            pts = thin_points(bone_points_mm)
            R = estimate_anatomical_frame(pts, prior)
        t["frame"] = time.perf_counter()
        xr: dict[int, np.ndarray] = {}
        if xray_points_mm and use_xray and self.model_full is not None:
            xr = {int(k): np.asarray(v, dtype=np.float64) for k, v in xray_points_mm.items()}
        t["xray"] = time.perf_counter()
        centroids = level_centroids(xr) if len(xr) >= 2 else {}
        if centroids:
            # Measuring |lateral| from each vertebra's own mid-plane follows axial rotation
            # (fresh phantom seeds 9601-9612: 0.986 +- 0.011 -> 0.993 +- 0.005 correct).
            point_level = split_levels_xray(
                pts, centroids, R[0], midplanes=level_midplanes(xr, R[0]), graph=graph
            )
        else:
            point_level = split_levels_us_only(pts, cranial=R[2], towards_probe=R[1])
        t["split"] = time.perf_counter()
        results, batches = self._crops(pts, point_level, xr, centroids, R, levels)
        self._run(batches, R, results)
        t["network"] = time.perf_counter()
        for lv, lc in results.items():
            if len(lc.points_mm):
                _gate(lc, pts[point_level == lv], xr.get(lv), level_frame(R, centroids, lv))
        t["gate"] = time.perf_counter()
        for items in batches.values():
            for lv, crop, xray in items:
                lc = results[lv]
                if self.us_snap_mm > 0:
                    # onto the level's own points, not the crop's neighbours: their
                    # surfaces lie within the radius where two vertebrae meet
                    own = pts[point_level == lv]
                    lc.points_mm = snap_to_us_surface(lc.points_mm, own, self.us_snap_mm)
                if self.n_samples > 0:
                    lc.uncertainty_mm = self.error_scale.for_points(
                        lc.points_mm, lc.spread_mm, crop, xray
                    )
        t["finish"] = time.perf_counter()
        names = ["frame", "xray", "split", "network", "gate", "finish"]
        prev = ["start", *names[:-1]]
        timings = {n: t[n] - t[p] for n, p in zip(names, prev, strict=True)}
        return SpineCompletionResult(
            [results[lv] for lv in levels if lv in results], R, pts, point_level, xr, timings
        )

    def _crops(self, pts, point_level, xr, centroids, R, levels):
        results: dict[int, LevelCompletion] = {}
        batches: dict[str, list] = {"full": [], "us_only": []}
        for lv in levels:
            own = pts[point_level == lv]
            if len(own) < MIN_POINTS:
                results[lv] = LevelCompletion(
                    lv,
                    np.zeros((0, 3)),
                    np.zeros(0),
                    False,
                    len(own),
                    0,
                    "insufficient_input",
                    f"L{lv}: {len(own)} US bone points (< {MIN_POINTS})",
                )
                continue
            arch = own.mean(axis=0)
            if lv in centroids:
                centre = 0.5 * (arch + centroids[lv])
            else:
                centre = arch - ARCH_TO_CENTROID_MM * R[1]
            crop = pts[crop_box(pts, centre, R)]
            has_xray = lv in xr and len(xr[lv]) >= MIN_POINTS and self.model_full is not None
            if not has_xray and self.model_us_only is None:
                results[lv] = LevelCompletion(
                    lv,
                    np.zeros((0, 3)),
                    np.zeros(0),
                    False,
                    len(crop),
                    0,
                    "insufficient_input",
                    f"L{lv}: no X-ray points and no US-only model",
                )
                continue
            batches["full" if has_xray else "us_only"].append((lv, crop, xr.get(lv)))
        return results, batches

    def _run(self, batches, R, results) -> None:
        for name, model in (("full", self.model_full), ("us_only", self.model_us_only)):
            items = batches[name]
            if not items:
                continue
            lv, us, xray = zip(*items, strict=True)
            out = complete(
                list(us),
                list(xray) if name == "full" else None,
                [f"L{v}" for v in lv],
                model,
                device=self.device,
                n_samples=self.n_samples,
                canonicalise="given",
                rotations=[R] * len(lv),
            )
            for i, level in enumerate(lv):
                points = out.points_mm[i]
                # no posterior samples: no uncertainty (zeros); else ``complete`` sets it
                no_spread = out.uncertainty_mm is None
                spread = np.zeros(len(points)) if no_spread else out.uncertainty_mm[i]
                results[level] = LevelCompletion(
                    level,
                    points,
                    np.zeros(len(points)),
                    name == "full",
                    len(us[i]),
                    0 if xray[i] is None else len(xray[i]),
                    "ok" if name == "full" else "us_only_fallback",
                    "" if name == "full" else f"L{level}: no X-ray points used: US-only model",
                    spread_mm=spread,
                )
        if batches["full"] and self.model_us_only is not None:
            # The gate's X-ray level check: where the US alone puts each body.
            lv, us, _ = zip(*batches["full"], strict=True)
            ref = complete(
                list(us),
                None,
                [f"L{v}" for v in lv],
                self.model_us_only,
                device=self.device,
                n_samples=0,
                canonicalise="given",
                rotations=[R] * len(lv),
            )
            for i, level in enumerate(lv):
                results[level].us_only_mm = ref.points_mm[i]


def _gate(lc: LevelCompletion, own_us: np.ndarray, xray: np.ndarray | None, R: np.ndarray) -> None:
    """Set ``lc``'s status, confidence and message from the quality gate (in place)."""
    xr = xray if lc.used_xray else None
    feats = quality_features(own_us, lc.points_mm, R, xr, lc.spread_mm, lc.us_only_mm)
    q = assess(feats, lc.used_xray)
    lc.status, lc.confidence, lc.quality = q.status, q.confidence, q.features
    lc.message = f"L{lc.level}: {q.message}" if q.message else ""


#: Statuses of a level that may be used as published (the others already say why not).
USABLE_STATUSES = ("ok", "us_only_fallback")


def cap_for_frame_loss(
    result: SpineCompletionResult, lost_fraction: float, max_lost_fraction: float
) -> list[int]:
    """Mark every usable level ``insufficient_us`` when the sweep lost too many frames.

    A sweep that lost frames can still hold enough points to complete every level, and
    the gate, which sees only the points, would pass it; the frame count says the
    anatomy was not swept as planned (``compounding.frame_loss``). In place.

    Args:
        result: the completion of the sweep's bone points.
        lost_fraction: the sweep's ``FrameLoss.fraction`` (0..1).
        max_lost_fraction: the largest fraction that leaves the statuses alone (0..1).

    Returns:
        The levels whose status changed.

    Raises:
        ValueError: a fraction outside 0..1 or not finite.
    """
    for name, value in (("lost_fraction", lost_fraction), ("max_lost_fraction", max_lost_fraction)):
        if not (0.0 <= value <= 1.0):
            raise ValueError(f"{name}: expected a fraction in 0..1, got {value}")
    if lost_fraction <= max_lost_fraction:
        return []
    changed = []
    message = (
        f"the sweep lost {100 * lost_fraction:.1f} % of its frames "
        f"(more than {100 * max_lost_fraction:.1f} %)"
    )
    for lc in result.levels:
        if lc.status in USABLE_STATUSES:
            lc.status = "insufficient_us"
            lc.message = message if not lc.message else f"{message}; {lc.message}"
            changed.append(lc.level)
    return changed
