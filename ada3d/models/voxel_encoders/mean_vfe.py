"""The mean voxel feature encoder (mmdet3d's ``HardSimpleVFE``)."""

from __future__ import annotations

import torch
from torch import nn

from ada3d.registry import MODELS


@MODELS.register_module()
class HardSimpleVFE(nn.Module):
    """Mean of the points in each voxel.

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
