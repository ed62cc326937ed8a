"""Mean voxel feature encoders (mmdet3d's ``HardSimpleVFE`` and ``DynamicSimpleVFE``)."""

from __future__ import annotations

import torch
from torch import nn

from ada3d.registry import MODELS
from sparse_ops.utils import decode_coords, encode_coords


@MODELS.register_module()
class HardSimpleVFE(nn.Module):
    """Mean of the points in each voxel, for hard voxelisation.

    Args:
        num_features: how many leading point columns to average (4: x, y, z, intensity).

    Shapes: ``points`` ``[M, max_points, C]`` (zero-padded), ``num_points`` ``[M]`` -> ``[M, num_features]``.
    """

    def __init__(self, num_features: int = 4) -> None:
        super().__init__()
        self.num_features = num_features

    @property
    def out_channels(self) -> int:
        return self.num_features

    def forward(self, points: torch.Tensor, num_points: torch.Tensor) -> torch.Tensor:
        summed = points[:, :, : self.num_features].sum(dim=1)
        return summed / num_points.clamp_min(1).to(points.dtype).unsqueeze(1)


@MODELS.register_module()
class DynamicSimpleVFE(nn.Module):
    """Mean of all points in each voxel, for dynamic voxelisation (no cap on points per voxel).

    Args:
        num_features: how many leading point columns to average (4: x, y, z, intensity).

    Shapes: ``points`` ``[N, C]`` and their voxel coordinates ``coors`` ``[N, 4]`` ``(batch, z, y, x)``, where a
    ``-1`` in z, y or x marks a point outside the grid (skipped) ->
    ``(features [V, num_features], voxel_coors [V, 4] int32)``, one row per occupied voxel, sorted by
    ``(batch, z, y, x)``.
    """

    def __init__(self, num_features: int = 4) -> None:
        super().__init__()
        self.num_features = num_features

    @property
    def out_channels(self) -> int:
        return self.num_features

    def forward(self, points: torch.Tensor, coors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if points.shape[0] != coors.shape[0] or coors.dim() != 2 or coors.shape[1] != 4:
            raise ValueError(
                f"points [N, C] and coors [N, 4] must pair up, got {tuple(points.shape)} and {tuple(coors.shape)}"
            )
        valid = (coors[:, 1:] >= 0).all(dim=1)
        voxel_coors, voxel_of_point = _unique_rows(coors[valid].long())
        features = points[valid, : self.num_features]
        sums = features.new_zeros((len(voxel_coors), self.num_features)).index_add_(0, voxel_of_point, features)
        counts = torch.bincount(voxel_of_point, minlength=len(voxel_coors)).to(features.dtype)
        return sums / counts.unsqueeze(1), voxel_coors.int()


def _unique_rows(coors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique ``(batch, *spatial)`` rows of non-negative coordinates ``[N, 1 + D]`` and each row's index
    among them. Rows are encoded as one int64 key over the extents present, so the sort is 1-D:
    ``torch.unique(dim=0)`` is two orders of magnitude slower on the CPU."""
    spatial_extents = (coors[:, 1:].amax(dim=0) + 1).tolist() if len(coors) else [1] * (coors.shape[1] - 1)
    keys, inverse = torch.unique(encode_coords(coors, spatial_extents), return_inverse=True)
    return decode_coords(keys, spatial_extents).long(), inverse
