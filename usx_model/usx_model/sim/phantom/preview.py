"""Mesh-only preview of a spine: three orthographic views with parts coloured (PNG).

Views (spine frame, LPS mm, first named axis to the right): axial (x-y), sagittal
(y-z, anterior on the left), coronal (x-z, patient left on the right). Vertices are
drawn as points coloured by part code, so the picture shows the labels and the shape.
"""

from __future__ import annotations

import numpy as np

from usx_model.base.parts import Part
from usx_model.sim.phantom.types import Spine

#: Part code -> colour (0 = unknown is grey).
PART_COLOURS = {
    0: "#999999",
    Part.BODY: "#d9c8a9",
    Part.PEDICLE: "#e07b39",
    Part.LAMINA: "#3a7dc9",
    Part.SPINOUS: "#c93a3a",
    Part.TRANSVERSE: "#3aa655",
    Part.SUPERIOR_ARTICULAR: "#8e44ad",
    Part.INFERIOR_ARTICULAR: "#d4b300",
}


def render_spine_preview(
    spine: Spine,
    path: str,
    max_points: int = 60000,
    us_points_mm: np.ndarray | None = None,
    xray_points_mm: np.ndarray | None = None,
) -> None:
    """Write a PNG with three orthographic views of ``spine`` to ``path``.

    Args:
        spine: meshes in one LPS frame.
        path: output PNG file.
        max_points: vertices drawn in total (evenly subsampled, deterministic).
        us_points_mm: optional (N, 3) simulated US partial points, drawn on top (blue).
        xray_points_mm: optional (M, 3) X-ray 2.5D body points, drawn on top (green).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not spine.vertebrae:
        raise ValueError(f"spine {spine.spine_id} has no vertebrae to preview")
    pts = np.concatenate([m.vertices_mm for m in spine.vertebrae.values()])
    part = np.concatenate([m.part for m in spine.vertebrae.values()])
    step = max(1, len(pts) // max_points)
    pts, part = pts[::step], part[::step]
    colours = np.array([PART_COLOURS.get(int(p), "#999999") for p in part])
    fig, axes = plt.subplots(1, 3, figsize=(15, 7))
    views = (("x (left) mm", "y (posterior) mm", 0, 1, "axial"),
             ("y (posterior) mm", "z (superior) mm", 1, 2, "sagittal"),
             ("x (left) mm", "z (superior) mm", 0, 2, "coronal"))  # fmt: skip
    for ax, (xl, yl, i, j, title) in zip(axes, views, strict=True):
        # Draw far points first so the near surface stays visible.
        depth_axis = 3 - i - j
        order = np.argsort(pts[:, depth_axis])
        ax.scatter(pts[order, i], pts[order, j], s=0.3, c=colours[order])
        for extra, colour in ((us_points_mm, "#1f3fff"), (xray_points_mm, "#00a000")):
            if extra is not None and len(extra):
                e = np.asarray(extra)[:: max(1, len(extra) // 20000)]
                ax.scatter(e[:, i], e[:, j], s=0.2, c=colour)
        ax.set_aspect("equal")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(f"{spine.spine_id}: {title}")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=Part(k).name.lower())
        for k, c in PART_COLOURS.items()
        if k
    ]
    if us_points_mm is not None:
        handles.append(plt.Line2D([], [], marker="o", ls="", color="#1f3fff", label="US partial"))
    if xray_points_mm is not None:
        handles.append(plt.Line2D([], [], marker="o", ls="", color="#00a000", label="X-ray"))
    fig.legend(handles=handles, loc="lower center", ncol=9)
    fig.savefig(path, dpi=80)
    plt.close(fig)
