"""Ada3D adaptive inference: importance predictor, spatial filter, sparsity-preserving BatchNorm."""

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.heatmap import centre_heatmap
from ada3d.models.adaptive.height_compression import to_bev
from ada3d.models.adaptive.importance_predictor import ImportancePredictor, importance_loss
from ada3d.models.adaptive.pruning_record import PruningRecord
from ada3d.models.adaptive.sp_norm import (
    SparsityPreservingBatchNorm,
    SparsityPreservingBatchNorm1d,
    SparsityPreservingBatchNorm2d,
)
from ada3d.models.adaptive.spatial_filter import DensityPrior, SpatialFilter

__all__ = [
    "BevGrid",
    "DensityPrior",
    "ImportancePredictor",
    "PruningRecord",
    "SparsityPreservingBatchNorm",
    "SparsityPreservingBatchNorm1d",
    "SparsityPreservingBatchNorm2d",
    "SpatialFilter",
    "centre_heatmap",
    "importance_loss",
    "to_bev",
]
