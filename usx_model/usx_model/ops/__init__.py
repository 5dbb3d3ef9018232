"""Point-cloud operations in pure PyTorch (same code on CPU and CUDA).

One operation per module: farthest point sampling, kNN, gather/group, three-NN
interpolation, Chamfer distance, F-score and (evaluation-only) EMD.
"""

from usx_model.ops.chamfer import ChamferResult, chamfer_distance, nearest_sq_dist
from usx_model.ops.emd import earth_movers_distance
from usx_model.ops.f1 import F1Result, f_score
from usx_model.ops.fps import farthest_point_sample
from usx_model.ops.gather import gather_points, group_points, index_points
from usx_model.ops.interpolate import three_interpolate, three_nn, three_weights
from usx_model.ops.knn import KnnResult, knn_points, pairwise_sq_dist

__all__ = [
    "ChamferResult",
    "F1Result",
    "KnnResult",
    "chamfer_distance",
    "earth_movers_distance",
    "f_score",
    "farthest_point_sample",
    "gather_points",
    "group_points",
    "index_points",
    "knn_points",
    "nearest_sq_dist",
    "pairwise_sq_dist",
    "three_interpolate",
    "three_nn",
    "three_weights",
]
