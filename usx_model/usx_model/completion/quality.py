"""Per-vertebra quality gate: may a completed vertebra be published as ``ok``?

The network always returns a full vertebra, also from inputs that cannot determine one
(a level the sweep barely touched, an X-ray placed on the wrong body). The gate judges
each completion from its inputs and its own output, never from the truth:

- ``arch_coverage``: fraction of the predicted dorsal surface (the points within
  ``DORSAL_DEPTH_MM`` of the most posterior predicted point, the part a probe on the
  back can see) that has an observed US point within ``COVERAGE_MM``;
- ``us_fit_mm``: median distance from the observed US points to the predicted surface
  (a prediction must pass through what was seen; neighbours in the crop stay a minority);
- ``xray_depth_mm``: how far the X-ray body points lie anterior to the observed arch,
  along the posterior axis (a body behind the arch or far in front is misplaced);
- ``xray_cranial_mm``: how far the X-ray body points lie cranial to the predicted body
  (an X-ray placed on the wrong level);
- ``xray_level_mm``: how far the X-ray body points lie cranial to the body that the
  US-only model predicts from the same US points. The full model moves its body to the
  X-ray, so an X-ray on the wrong level agrees with the full prediction; the US-only
  model places the body from the arch alone and does not follow it;
- ``xray_arch_mm``: how far the X-ray body points lie cranial to the observed US points
  (medians along S): a vertebra's body lies at the height of its own arch, within a few
  mm; a body half a level away is on the wrong level. It reads the inputs alone, so it
  holds where the US-only model's body is itself off (on some real L4-L5, by 7-10 mm);
- ``lateral_extent``: lateral span of the observed points over that of the prediction
  (a patch of arch seen);
- ``ridge_offset``: lateral position of the most posterior observed points (the spinous
  processes, on the midline) from the median of all observed points, over their lateral
  span: about 0 when the sweep saw both sides of the arch, towards -0.5 or 0.5 when it
  saw one lateral half. It reads the observation alone, because the network centres
  its vertebra on whatever half it was given, and then coverage and fit look good;
- ``us_fit_mm``, ``lateral_balance``, ``spread_mm``: reported; only gross disagreement
  (``us_fit_mm``) is gated: the network fits what it saw even when it fails.

Each gated feature maps to a score in [0, 1] by a linear ramp between a failing and a
passing anchor (:class:`GateThresholds`); ``confidence`` is the lowest score, so it names
the weakest input. Units mm, any frame in which ``posterior`` is the patient's posterior
direction (LPS +y for the evaluation sets, ``R_base_lps[1]`` live).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from usx_model.base.points import check_points, nearest_distance

#: Statuses a completed vertebra can carry (``usx_msgs/VertebraCompletion`` mirrors them).
OK = "ok"
US_ONLY_FALLBACK = "us_only_fallback"
INSUFFICIENT_INPUT = "insufficient_input"
INSUFFICIENT_US = "insufficient_us"
INSUFFICIENT_XRAY = "insufficient_xray"
LOW_CONFIDENCE = "low_confidence"

#: Depth of the dorsal band of the prediction whose coverage is measured, mm.
DORSAL_DEPTH_MM = 12.0
#: An observed point this close to a predicted dorsal point covers it, mm.
COVERAGE_MM = 3.0
#: Share of the observed points, the most posterior, that stand for the spinous ridge.
RIDGE_FRACTION = 0.05
#: The features :func:`quality_features` measures, in JSON order.
FEATURES = (
    "us_points",
    "xray_points",
    "arch_coverage",
    "lateral_balance",
    "lateral_extent",
    "ridge_offset",
    "us_fit_mm",
    "xray_depth_mm",
    "xray_cranial_mm",
    "xray_level_mm",
    "xray_arch_mm",
    "spread_mm",
)
#: Scores of which a zero makes the X-ray ``insufficient_xray``.
XRAY_GATED = ("xray_depth_mm", "xray_cranial_mm", "xray_level_mm", "xray_arch_mm")
#: Below this confidence a vertebra that passed the input checks is ``low_confidence``.
MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class GateThresholds:
    """Ramp anchors (fail, pass) per feature; a value at or beyond ``fail`` scores 0.

    Defaults were set on phantom validation spines and the real validation vertebrae
    (``usx measure gate``; the procedure and the held-out vertebrae are in
    ``docs/results.md``).
    """

    min_us_points: int = 64
    coverage: tuple[float, float] = (0.05, 0.25)
    lateral_extent: tuple[float, float] = (0.85, 1.0)
    ridge_offset: tuple[float, float] = (0.2, 0.08)
    us_fit_mm: tuple[float, float] = (4.0, 2.5)
    min_xray_points: int = 16
    xray_depth_mm: tuple[float, float, float, float] = (18.0, 27.0, 41.0, 46.0)
    xray_cranial_mm: tuple[float, float] = (11.0, 7.0)
    xray_level_mm: tuple[float, float] = (14.0, 8.0)
    xray_arch_mm: tuple[float, float] = (15.0, 10.0)

    def __post_init__(self) -> None:
        for name in (
            "coverage",
            "lateral_extent",
            "ridge_offset",
            "us_fit_mm",
            "xray_cranial_mm",
            "xray_level_mm",
            "xray_arch_mm",
        ):
            fail, good = getattr(self, name)
            if not (np.isfinite([fail, good]).all() and fail != good and min(fail, good) >= 0):
                raise ValueError(
                    f"{name}: expected (fail, pass) >= 0 and apart, got {(fail, good)}"
                )
        d = self.xray_depth_mm
        if not (len(d) == 4 and d[0] < d[1] <= d[2] < d[3]):
            raise ValueError(
                f"xray_depth_mm: expected (fail_low < pass_low <= pass_high < fail_high), got {d}"
            )
        if self.min_us_points < 1 or self.min_xray_points < 1:
            raise ValueError(
                "min_us_points and min_xray_points: expected >= 1, got"
                f" {self.min_us_points} and {self.min_xray_points}"
            )


@dataclass(frozen=True)
class VertebraQuality:
    """The gate's verdict on one completed vertebra.

    Attributes:
        status: one of the module's statuses.
        confidence: in [0, 1], the lowest feature score.
        message: why, for a status other than ok (empty for ok).
        features: the measured features (JSON-safe floats; NaN where not measurable).
    """

    status: str
    confidence: float
    message: str
    features: dict[str, float]


def _ramp(x: float, fail: float, good: float) -> float:
    """0 at ``fail``, 1 at ``good`` (either order), linear between, clipped."""
    if not np.isfinite(x):
        return 0.0
    return float(np.clip((x - fail) / (good - fail), 0.0, 1.0))


def _body_height(cloud: np.ndarray, R: np.ndarray, back: float) -> float:
    """Median height (along ``R[2]``) of the points no more posterior than ``back``
    (all of them where none is)."""
    body = cloud[cloud @ R[1] <= back]
    return float(np.median((body if len(body) else cloud) @ R[2]))


def level_frame(R: np.ndarray, centroids: dict[int, np.ndarray], level: int) -> np.ndarray:
    """(3, 3) rows L, P, S of one vertebra, the frame its gate is measured in: S along the
    spine's local tangent through the neighbouring X-ray body centroids (``centroids``:
    level -> (3,), mm; lordosis tilts L1 and L5 against the whole spine's axis), L kept
    from ``R`` (rows L, P, S of the spine); ``R`` where fewer than two are known."""
    near = sorted(c for c in centroids if abs(c - level) <= 1)
    if len(near) < 2:
        return R
    tangent = centroids[near[0]] - centroids[near[-1]]  # towards L1: cranial
    s = tangent - (tangent @ R[0]) * R[0]
    if np.linalg.norm(s) < 1e-6:
        return R
    s = s / np.linalg.norm(s)
    s = s if s @ R[2] >= 0 else -s
    return np.stack([R[0], np.cross(s, R[0]), s])


def quality_features(
    us_mm: np.ndarray,
    pred_mm: np.ndarray,
    R_lps: np.ndarray,
    xray_mm: np.ndarray | None = None,
    uncertainty_mm: np.ndarray | None = None,
    us_only_mm: np.ndarray | None = None,
) -> dict[str, float]:
    """Measure the gate's features of one completed vertebra.

    Args:
        us_mm: (N, 3) observed US bone points of the level (may include neighbours).
        pred_mm: (M, 3) predicted surface, same frame.
        R_lps: (3, 3) rows = the patient's L, P, S axes in that frame.
        xray_mm: (K, 3) X-ray body points fed to the network, or None.
        uncertainty_mm: (M,) per-point posterior spread, or None.
        us_only_mm: (L, 3) the US-only model's prediction from the same US points, same
            frame, or None (then ``xray_level_mm`` is NaN and not gated).

    Returns:
        dict with us_points, xray_points, arch_coverage, lateral_balance, lateral_extent,
        ridge_offset, us_fit_mm, xray_depth_mm, xray_cranial_mm, xray_level_mm,
        xray_arch_mm, spread_mm
        (NaN where not measurable).
    """
    us, pred = check_points(us_mm, "us_mm"), check_points(pred_mm, "pred_mm")
    xr = None if xray_mm is None else check_points(xray_mm, "xray_mm")
    uo = None if us_only_mm is None else check_points(us_only_mm, "us_only_mm")
    R = np.asarray(R_lps, dtype=np.float64)
    if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-6):
        raise ValueError(f"R_lps: expected a (3, 3) rotation (rows L, P, S), got {R.shape}")
    f = dict.fromkeys(FEATURES, float("nan"))
    f["us_points"] = float(len(us))
    f["xray_points"] = 0.0 if xr is None else float(len(xr))
    if len(pred) and len(us):
        depth = pred @ R[1]
        dorsal = pred[depth >= depth.max() - DORSAL_DEPTH_MM]
        d_cov = nearest_distance(dorsal, us)
        f["arch_coverage"] = float(np.mean(d_cov <= COVERAGE_MM))
        d_fit = nearest_distance(us, pred)
        f["us_fit_mm"] = float(np.median(d_fit))
        lat_pred, lat_us = pred @ R[0], us @ R[0]
        mid = np.median(lat_pred)
        n_left, n_right = int(np.sum(lat_us > mid)), int(np.sum(lat_us <= mid))
        f["lateral_balance"] = min(n_left, n_right) / max(n_left, n_right, 1)
        span_pred = np.subtract(*np.percentile(lat_pred, [95, 5]))
        span_us = np.subtract(*np.percentile(lat_us, [95, 5]))
        f["lateral_extent"] = float(span_us / max(span_pred, 1e-9))
        depth_us = us @ R[1]
        ridge = lat_us[depth_us >= np.quantile(depth_us, 1.0 - RIDGE_FRACTION)]
        f["ridge_offset"] = float((np.median(ridge) - np.median(lat_us)) / max(span_us, 1e-9))
    if xr is not None and len(xr) and len(us):
        f["xray_depth_mm"] = float(np.median(us @ R[1]) - np.median(xr @ R[1]))
        # Against a predicted body (points no more posterior than the X-ray body's back
        # edge): the whole vertebra's centroid lies caudal to its body by the slant of
        # the arch, most at L1.
        back = np.percentile(xr @ R[1], 95)
        height = np.median(xr @ R[2])
        f["xray_cranial_mm"] = float(height - _body_height(pred, R, back))
        f["xray_arch_mm"] = float(height - np.median(us @ R[2]))
        if uo is not None and len(uo):
            f["xray_level_mm"] = float(height - _body_height(uo, R, back))
    if uncertainty_mm is not None:
        u = np.asarray(uncertainty_mm, dtype=np.float64).reshape(-1)
        if len(u) != len(pred):
            raise ValueError(f"uncertainty_mm: expected {len(pred)} values, got {len(u)}")
        f["spread_mm"] = float(np.mean(u)) if len(u) else float("nan")
    return f


def assess(
    features: dict[str, float],
    used_xray: bool,
    thresholds: GateThresholds | None = None,
) -> VertebraQuality:
    """Status and confidence of one vertebra from :func:`quality_features`.

    Order of verdicts: too few US points or too little of the arch covered ->
    ``insufficient_us``; a model that took the X-ray with too few or misplaced X-ray
    points -> ``insufficient_xray``; confidence below :data:`MIN_CONFIDENCE` ->
    ``low_confidence``; otherwise ``ok`` (``us_only_fallback`` without X-ray).
    """
    th = thresholds or GateThresholds()
    scores = {
        "arch_coverage": _ramp(features["arch_coverage"], *th.coverage),
        "lateral_extent": _ramp(features["lateral_extent"], *th.lateral_extent),
        "ridge_offset": _ramp(abs(features["ridge_offset"]), *th.ridge_offset),
        "us_fit_mm": _ramp(features["us_fit_mm"], *th.us_fit_mm),
    }
    if used_xray:
        d = features["xray_depth_mm"]
        lo_fail, lo_pass, hi_pass, hi_fail = th.xray_depth_mm
        scores["xray_depth_mm"] = min(_ramp(d, lo_fail, lo_pass), _ramp(d, hi_fail, hi_pass))
        scores["xray_cranial_mm"] = _ramp(abs(features["xray_cranial_mm"]), *th.xray_cranial_mm)
        scores["xray_arch_mm"] = _ramp(abs(features["xray_arch_mm"]), *th.xray_arch_mm)
        if np.isfinite(features["xray_level_mm"]):
            scores["xray_level_mm"] = _ramp(abs(features["xray_level_mm"]), *th.xray_level_mm)
    weakest = min(scores, key=scores.get)
    confidence = scores[weakest]
    n_us, n_x = int(features["us_points"]), int(features["xray_points"])
    us_scores = ("arch_coverage", "lateral_extent", "ridge_offset")
    if n_us < th.min_us_points or min(scores[k] for k in us_scores) == 0.0:
        status = INSUFFICIENT_US
        message = (
            f"{n_us} US points (need >= {th.min_us_points}), arch coverage"
            f" {features['arch_coverage']:.2f} (need > {th.coverage[0]:.2f}), lateral extent"
            f" {features['lateral_extent']:.2f} (need > {th.lateral_extent[0]:.2f}), spinous"
            f" ridge at {features['ridge_offset']:+.2f} of the lateral span from the points'"
            f" median (need within {th.ridge_offset[0]:.2f}: both sides of the arch)"
        )
    elif used_xray and (
        n_x < th.min_xray_points or min(scores[k] for k in XRAY_GATED if k in scores) == 0
    ):
        status = INSUFFICIENT_XRAY
        message = (
            f"{n_x} X-ray points (need >= {th.min_xray_points}), body"
            f" {features['xray_depth_mm']:.1f} mm anterior to the arch (plausible"
            f" {th.xray_depth_mm[0]:.0f}..{th.xray_depth_mm[3]:.0f} mm) and"
            f" {features['xray_cranial_mm']:.1f} mm cranial to it (plausible within"
            f" {th.xray_cranial_mm[0]:.0f} mm), {features['xray_level_mm']:.1f} mm"
            f" cranial to the body the US alone implies (plausible within"
            f" {th.xray_level_mm[0]:.0f} mm: else the X-ray is on another level) and"
            f" {features['xray_arch_mm']:.1f} mm cranial to the US points (plausible within"
            f" {th.xray_arch_mm[0]:.0f} mm)"
        )
    elif confidence < MIN_CONFIDENCE:
        status = LOW_CONFIDENCE
        message = f"confidence {confidence:.2f} < {MIN_CONFIDENCE}: weakest {weakest}"
    else:
        status, message = (OK, "") if used_xray else (US_ONLY_FALLBACK, "no X-ray: US-only model")
    if status in (INSUFFICIENT_US, INSUFFICIENT_XRAY):
        confidence = 0.0  # an input is missing, whatever the other scores say
    return VertebraQuality(status, float(confidence), message, features)
