"""The published per-point uncertainty: an error scale in mm, calibrated, not the raw spread.

The network's posterior spread ``s`` (mean distance from a point of the posterior mean to
the nearest point of each posterior sample) ranks the error weakly and is several times
too small to read as one; on real vertebrae the distance ``d`` from a point to the nearest
observed point of its level (a US bone point, or an X-ray body point where the X-ray was
used) ranks it better: the error sits where nothing was seen. The published scale
combines both:

    log sigma = a0 + a1 * log(s) + a2 * log(1 + d / 1 mm)

with ``(a0, a1, a2)`` fitted by maximum likelihood under a half-normal error model (the
distance to the true surface of a point whose 3D error is isotropic normal has scale
sigma), so the interval ``error <= z_p * sigma`` (``z_p`` the half-normal quantile, 1.0 at
68 %, 1.96 at 95 %) is meant to cover the truth at rate ``p``. The shipped coefficients
(``usx_model/weights/error_scale.json``) come from ``usx measure uncertainty --fit``
(docs/results.md), on phantom validation spines and the real validation vertebrae only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.stats import norm

from usx_model.base.points import nearest_distance

#: The shipped coefficients.
SHIPPED = Path(__file__).resolve().parents[1] / "weights" / "error_scale.json"
#: Spreads below this are clipped before the log (a point all samples agree on exactly).
MIN_SPREAD_MM = 1e-3


def half_normal_quantile(p: float) -> float:
    """z with P(|N(0, 1)| <= z) = p."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: expected 0 < p < 1, got {p}")
    return float(norm.ppf(0.5 + 0.5 * p))


def _features(spread_mm: np.ndarray, distance_mm: np.ndarray) -> np.ndarray:
    s = np.asarray(spread_mm, dtype=np.float64).reshape(-1)
    d = np.asarray(distance_mm, dtype=np.float64).reshape(-1)
    if s.shape != d.shape:
        raise ValueError(
            f"spread_mm, distance_mm: expected equal lengths, got {s.shape}, {d.shape}"
        )
    if not (np.isfinite(s).all() and np.isfinite(d).all()) or (s < 0).any() or (d < 0).any():
        raise ValueError("spread_mm, distance_mm: expected finite values >= 0")
    return np.stack([np.ones_like(s), np.log(np.maximum(s, MIN_SPREAD_MM)), np.log1p(d)], axis=1)


@dataclass(frozen=True)
class ErrorScale:
    """``sigma(spread, distance to the nearest observed point)`` in mm (module docstring).

    Attributes:
        coef: (a0, a1, a2).
        provenance: where the coefficients come from (sets, command, figures).
    """

    coef: tuple[float, float, float]
    provenance: dict = field(default_factory=dict, compare=False)

    def __call__(self, spread_mm: np.ndarray, distance_mm: np.ndarray) -> np.ndarray:
        """(N,) sigma in mm from (N,) spreads and (N,) distances to the nearest observation."""
        return np.exp(_features(spread_mm, distance_mm) @ np.asarray(self.coef))

    def for_points(
        self,
        points_mm: np.ndarray,
        spread_mm: np.ndarray,
        us_mm: np.ndarray,
        xray_mm: np.ndarray | None = None,
    ) -> np.ndarray:
        """Sigma of each of ``points_mm`` (N, 3) from its spread and the observations.

        Args:
            points_mm: (N, 3) predicted points.
            spread_mm: (N,) their posterior spread.
            us_mm: (K, 3) the level's observed US bone points.
            xray_mm: (J, 3) the X-ray body points the network took, or None.
        """
        return self(spread_mm, observed_distance(points_mm, us_mm, xray_mm))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        doc = {"coef": list(self.coef), "model": _MODEL, **self.provenance}
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        return path


_MODEL = "log sigma = a0 + a1 log(max(spread_mm, 1e-3)) + a2 log(1 + d_observed_mm)"


def observed_distance(
    points_mm: np.ndarray, us_mm: np.ndarray, xray_mm: np.ndarray | None = None
) -> np.ndarray:
    """(N,) distance (mm) from each point to the nearest US point or X-ray point.

    With no observed point at all the distance is 50 mm (nothing near was seen).
    """
    pts = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    seen = [np.asarray(o).reshape(-1, 3) for o in (us_mm, xray_mm) if o is not None and len(o)]
    if not seen:
        return np.full(len(pts), 50.0)
    # the nearest of the union is the nearer of the two nearest: one search, not two
    return np.minimum(nearest_distance(pts, np.concatenate(seen)), 50.0)


def load_error_scale(path: str | Path = SHIPPED) -> ErrorScale:
    """The coefficients in ``path`` (JSON with ``coef``: three numbers).

    Raises:
        ValueError: not such a file (names the file and what is wrong).
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        coef = tuple(float(c) for c in doc["coef"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: expected JSON with 'coef': [a0, a1, a2]; {exc}") from exc
    if len(coef) != 3 or not all(math.isfinite(c) for c in coef):
        raise ValueError(f"{path}: expected three finite coefficients, got {coef}")
    provenance = {k: v for k, v in doc.items() if k not in ("coef", "model")}
    return ErrorScale(coef, provenance)  # type: ignore[arg-type]


def fit_error_scale(
    spread_mm: np.ndarray,
    distance_mm: np.ndarray,
    error_mm: np.ndarray,
    weights: np.ndarray | None = None,
) -> ErrorScale:
    """Half-normal maximum-likelihood fit of the coefficients to observed errors.

    Args:
        spread_mm, distance_mm, error_mm: (N,) per point: posterior spread, distance to the
            nearest observed point (:func:`observed_distance`), distance to the true
            surface.
        weights: (N,) per-point weights of the likelihood (e.g. to give two sets of
            different sizes equal say), or None for equal weights.

    Returns:
        the fitted :class:`ErrorScale` (no provenance: the caller adds it).
    """
    X = _features(spread_mm, distance_mm)
    e = np.asarray(error_mm, dtype=np.float64).reshape(-1)
    if e.shape != (len(X),) or not np.isfinite(e).all() or (e < 0).any():
        raise ValueError(f"error_mm: expected {len(X)} finite values >= 0, got {e.shape}")
    if len(e) < 3:
        raise ValueError(f"expected at least 3 points, got {len(e)}")
    wt = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=np.float64)
    if wt.shape != e.shape or not np.isfinite(wt).all() or (wt < 0).any() or wt.sum() <= 0:
        raise ValueError(f"weights: expected {len(e)} finite values >= 0, not all 0")
    wt = wt / wt.sum()
    e2 = e * e

    def nll(a: np.ndarray) -> tuple[float, np.ndarray]:
        # per point: log sigma + e^2 / (2 sigma^2), constants dropped
        log_sigma = X @ a
        w = e2 * np.exp(-2.0 * log_sigma)
        value = float(wt @ (log_sigma + 0.5 * w))
        grad = X.T @ (wt * (1.0 - w))
        return value, grad

    a0 = np.array([math.log(max(np.sqrt(np.mean(e2)), 1e-6)), 0.0, 0.0])
    res = minimize(nll, a0, jac=True, method="BFGS")
    if not np.isfinite(res.x).all():
        raise ValueError(f"the fit did not converge: {res.message}")
    return ErrorScale(tuple(float(c) for c in res.x))  # type: ignore[arg-type]
