"""X-ray evidence along the beam for every RENet point (our extension of late fusion).

A lateral radiograph says, for every line parallel to the beam, whether it crosses the
vertebral body: the 2.5D X-ray points fill the body's silhouette on one plane. In the
reference's late fusion those points enter RENet as ordinary points, so only points
within a kNN radius of that mid-sagittal plane ever see them, and the lateral half of
each body wall (10-20 mm away) learns the silhouette only through the global feature.

Here each RENet input point is projected along the beam onto the X-ray plane and
encodes its k nearest projected X-ray points (in-plane offsets and their lengths) with
a shared MLP and a max: inside, on the edge of or outside the silhouette, and where the
edge lies, wherever the point is along the beam. The projection direction is the normal
of the X-ray points' plane (their smallest principal axis), so it follows the
observation in any pose and needs no extra input. It is the beam direction exactly for
the 2.5D points of the simulator (parallel projection onto the mid-sagittal plane); in
the pipeline (``ingest.placement``) the points are ray/plane cuts on each vertebra's
symmetry plane, whose normal lies within a few degrees of the central ray.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from usx_model.ops.gather import index_points
from usx_model.ops.knn import knn_points


def beam_directions(xray: torch.Tensor) -> torch.Tensor:
    """(B, 3) unit normals of each X-ray cloud's best-fit plane (sign arbitrary).

    Args:
        xray: (B, Nx, 3) X-ray points, Nx >= 3, any frame.
    """
    centred = xray - xray.mean(dim=1, keepdim=True)
    cov = centred.transpose(1, 2) @ centred
    # eigh sorts eigenvalues ascending: column 0 is the least-variance axis. float64
    # keeps the near-zero eigenvalue of an exactly planar cloud well separated.
    _, vecs = torch.linalg.eigh(cov.double())
    return vecs[:, :, 0].to(xray.dtype)


def project_along(points: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
    """Remove each point's component along its batch's ``normal``: (B, N, 3) → (B, N, 3)."""
    along = (points * normal[:, None, :]).sum(dim=2, keepdim=True)
    return points - along * normal[:, None, :]


class SilhouetteEncoder(nn.Module):
    """Per-point feature of the X-ray silhouette seen along the beam.

    For each query point: the k nearest X-ray points after both are projected onto the
    X-ray plane; [offset (3), length (1)] of each → Linear(4→hidden) → ReLU →
    Linear(hidden→out) → max over the k. Output (B, N, out).
    """

    def __init__(self, out_dim: int, k: int, hidden: int = 32) -> None:
        super().__init__()
        self.k = k
        self.mlp = nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, points: torch.Tensor, xray: torch.Tensor) -> torch.Tensor:
        """points (B, N, 3), xray (B, Nx, 3), same (normalised) frame → (B, N, out)."""
        normal = beam_directions(xray)
        q, r = project_along(points, normal), project_along(xray, normal)
        idx = knn_points(q, r, min(self.k, r.shape[1])).idx
        offset = index_points(r, idx) - q[:, :, None, :]
        length = offset.norm(dim=3, keepdim=True)
        return F.relu(self.mlp(torch.cat([offset, length], dim=3)).amax(dim=2))
