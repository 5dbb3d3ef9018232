"""Surface denoising of a completed vertebra: a damped step onto local tangent planes.

The decoder's points scatter about a millimetre around the bone surface, roughly evenly
on both sides of it (session-9 diagnosis in the README). A surface is locally a plane,
so the scatter along the normal is noise that the points' own neighbourhood can remove:
each point moves towards a least-squares plane (centroid and smallest principal axis of
``k`` nearest neighbours, the one-step projection of point-set surfaces, Alexa et al.
2001). The move is damped by ``step``: a full step flattens thin plates and sharp
processes of the arch, where the neighbourhood spans both faces.

The planes are fitted at anchors, every ``anchor_stride``-th point, and each point uses
its nearest anchor's plane: neighbour search dominates the cost, and on the validation
split planes at every 4th point did as well as planes at every point. The network's
output lists each seed's children together, so a stride of 4 keeps 2 of every seed's 8.

``k``, ``step`` and ``anchor_stride`` were chosen on the validation split (README,
session 10); the test set played no part.
"""

from __future__ import annotations

import torch

from usx_model.ops._checks import check_points
from usx_model.ops.gather import index_points
from usx_model.ops.knn import knn_points

#: Neighbours (anchor included) that define each anchor's tangent plane.
K_NEIGHBOURS = 32
#: Share of the distance to its plane each point moves.
STEP = 0.5
#: Every how many points a plane is fitted.
ANCHOR_STRIDE = 4


def local_planes(
    anchors: torch.Tensor, points: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares plane of each anchor's ``k`` nearest points.

    Args:
        anchors: (B, A, 3) where planes are fitted.
        points: (B, N, 3) the cloud the neighbours come from; k <= N.
        k: neighbours per anchor (an anchor of the cloud counts itself).

    Returns:
        centroids (B, A, 3) and unit normals (B, A, 3) of arbitrary sign: the smallest
        principal axis of the neighbourhood.
    """
    nb = index_points(points, knn_points(anchors, points, k).idx)  # (B, A, k, 3)
    centroid = nb.mean(dim=2)
    d = nb - centroid.unsqueeze(2)
    cov = d.transpose(-1, -2) @ d  # (B, A, 3, 3)
    # float64 keeps eigh exact where the neighbourhood is (nearly) degenerate.
    normal = torch.linalg.eigh(cov.double()).eigenvectors[..., 0].to(points.dtype)
    return centroid, normal


def denoise_surface(
    points: torch.Tensor,
    k: int = K_NEIGHBOURS,
    step: float = STEP,
    anchor_stride: int = ANCHOR_STRIDE,
) -> torch.Tensor:
    """Move every point ``step`` of the way onto its nearest anchor's tangent plane.

    Equivariant under rotation, translation and uniform scale; with ``anchor_stride`` 1
    (a plane at every point) also under point order.

    Args:
        points: (B, N, 3) clouds, any length unit (normalised or mm).
        k: neighbours per plane; 3 <= k <= N.
        step: in [0, 1]; 0 leaves the points, 1 projects them onto the planes.
        anchor_stride: a plane is fitted at points 0, s, 2s, ... (s >= 1).

    Returns:
        (B, N, 3) denoised clouds, same dtype and device.

    Raises:
        ValueError: a bad cloud (shape, empty, NaN/Inf), k outside [3, N], step outside
            [0, 1], anchor_stride < 1.
    """
    check_points("points", points)
    n = points.shape[1]
    if not 3 <= k <= n:
        raise ValueError(f"k: expected 3 <= k <= N = {n} (neighbours per plane), got {k}")
    if not 0.0 <= step <= 1.0:
        raise ValueError(f"step: expected a share in [0, 1], got {step}")
    if anchor_stride < 1:
        raise ValueError(f"anchor_stride: expected >= 1, got {anchor_stride}")
    anchors = points[:, ::anchor_stride].contiguous()
    centroid, normal = local_planes(anchors, points, k)
    if anchor_stride > 1:
        near = knn_points(points, anchors, 1).idx  # (B, N, 1)
        centroid, normal = (
            index_points(centroid, near)[:, :, 0],
            index_points(normal, near)[:, :, 0],
        )
    offset = ((points - centroid) * normal).sum(-1, keepdim=True)
    return points - step * offset * normal
