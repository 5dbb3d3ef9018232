"""Scoring and pictures of a completed spine against its ground truth (demo, pipeline).

``score_levels`` gives per-level metrics (``metrics.vertebra_metrics``) of completed
vertebrae in any common frame; ``render_spine`` draws the completed spine over the US
bone points and the ground truth in lateral and axial views of the anatomical frame.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt
import numpy as np

from usx_model.metrics.vertebra import vertebra_metrics

#: matplotlib colours of L1..L5 (the RViz palette of the completion node).
LEVEL_COLOURS = ("#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231")
_KEYS = ("cd_l1_mm", "body_cd_l1_mm", "arch_cd_l1_mm", "f1", "body_f1", "cd_l2_x1e4")


def score_levels(
    completed_mm: dict[int, np.ndarray],
    gt_mm: dict[int, np.ndarray],
    gt_part: dict[int, np.ndarray],
    scale_mm: float = 110.0,
) -> dict[int, dict[str, float]]:
    """Per-level metrics of predictions against GT surface samples (same frame, mm).

    Args:
        completed_mm: level -> (N, 3) predicted points.
        gt_mm: level -> (M, 3) GT surface samples.
        gt_part: level -> (M,) part codes of the GT samples.
        scale_mm: normalisation scale for the CD×1e4 figure (a typical vertebra's).

    Returns:
        level -> {cd_l1_mm, body_cd_l1_mm, arch_cd_l1_mm, f1, body_f1, cd_l2_x1e4}; levels
        without a prediction or GT are left out.
    """
    out = {}
    for lv, pred in sorted(completed_mm.items()):
        if lv not in gt_mm or len(pred) == 0:
            continue
        m = vertebra_metrics(pred, gt_mm[lv], scale_mm, gt_part=gt_part[lv], emd_points=None)
        out[lv] = {k: float(m[k]) for k in _KEYS if k in m}
    return out


def render_spine(
    path: str | Path,
    R_frame_lps: np.ndarray,
    completed_mm: dict[int, np.ndarray],
    us_points_mm: np.ndarray | None = None,
    gt_mm: dict[int, np.ndarray] | None = None,
    title: str = "",
    max_points: int = 4000,
) -> Path:
    """A 3D view (shaded point splats from posterior-left) beside the lateral (P-S) and
    axial (L-P) views of a spine, into a PNG.

    Args:
        path: output PNG.
        R_frame_lps: (3, 3) rows = L, P, S axes in the points' frame (identity for LPS).
        completed_mm: level -> (N, 3) completed points (coloured by level).
        us_points_mm: (K, 3) observed US bone points (blue), or None.
        gt_mm: level -> (M, 3) ground-truth samples (grey), or None.
        title: figure title.
        max_points: per-cloud subsample drawn (keeps the PNG light).
    """
    R = np.asarray(R_frame_lps, dtype=np.float64)
    rng = np.random.default_rng(0)

    def lps(p: np.ndarray) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if len(p) > max_points:
            p = p[rng.choice(len(p), max_points, replace=False)]
        return p @ R.T

    fig = plt.figure(figsize=(18, 7))
    ax3 = fig.add_subplot(1, 3, 1, projection="3d")
    if us_points_mm is not None and len(us_points_mm):
        u = lps(us_points_mm)
        ax3.scatter(u[:, 0], u[:, 1], u[:, 2], s=0.5, c="#1f77b4", alpha=0.4, depthshade=True)
    for lv, pts in sorted(completed_mm.items()):
        if len(pts):
            c = lps(pts)
            ax3.scatter(c[:, 0], c[:, 1], c[:, 2], s=2, c=LEVEL_COLOURS[lv - 1], depthshade=True)
    # seen from posterior-left and above, the way a surgeon stands at the table
    ax3.view_init(elev=20, azim=45)
    ax3.set(
        title="3D (posterior-left)",
        xlabel="left (mm)",
        ylabel="posterior (mm)",
        zlabel="superior (mm)",
    )
    ax3.set_box_aspect(
        np.ptp(
            np.concatenate([lps(p) for p in completed_mm.values() if len(p)] or [np.zeros((2, 3))]),
            axis=0,
        )
        + 1.0
    )
    axes = [fig.add_subplot(1, 3, 2), fig.add_subplot(1, 3, 3)]
    views = (
        ("lateral", 1, 2, "posterior (mm)", "superior (mm)"),
        ("axial", 0, 1, "left (mm)", "posterior (mm)"),
    )
    for ax, (name, i, j, xl, yl) in zip(axes, views, strict=True):
        if gt_mm:
            g = lps(np.concatenate(list(gt_mm.values())))
            ax.scatter(g[:, i], g[:, j], s=1, c="0.75", label="ground truth", rasterized=True)
        if us_points_mm is not None and len(us_points_mm):
            u = lps(us_points_mm)
            ax.scatter(u[:, i], u[:, j], s=1, c="#1f77b4", label="US bone points", rasterized=True)
        for lv, pts in sorted(completed_mm.items()):
            if len(pts):
                c = lps(pts)
                ax.scatter(
                    c[:, i], c[:, j], s=1, c=LEVEL_COLOURS[lv - 1], label=f"L{lv}", rasterized=True
                )
        ax.set(title=name, xlabel=xl, ylabel=yl, aspect="equal")
        ax.grid(alpha=0.3)
    axes[0].legend(markerscale=6, fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
