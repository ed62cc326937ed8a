"""Benchmark inputs: point clouds, the voxelisation of a scenario, and batches of voxelised clouds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ada3d.models.voxel_encoders import HardSimpleVFE
from ada3d.ops.voxelize import grid_shape, hard_voxelize


@dataclass(frozen=True)
class PointCloud:
    """One LiDAR sample: ``points`` ``[N, C]`` float32 (x, y, z in metres first), named for the table."""

    name: str
    points: torch.Tensor


@dataclass(frozen=True)
class Voxelization:
    """Hard voxelisation + mean VFE, as a detector's data preprocessor runs it.

    Attributes:
        voxel_size: ``(dx, dy, dz)`` in metres.
        point_cloud_range: ``[x0, y0, z0, x1, y1, z1]`` in metres.
        max_points_per_voxel / max_voxels: the caps of hard voxelisation (per sample).
        num_features: leading point columns averaged into the voxel feature (the encoder's ``in_channels``).
    """

    voxel_size: tuple[float, float, float]
    point_cloud_range: tuple[float, float, float, float, float, float]
    max_points_per_voxel: int
    max_voxels: int
    num_features: int

    @property
    def sparse_shape(self) -> tuple[int, int, int]:
        """The encoder grid ``(z, y, x)``: the voxel grid plus one z layer, as mmdet3d and OpenPCDet set it."""
        z, y, x = grid_shape(self.voxel_size, self.point_cloud_range)
        return z + 1, y, x

    def __call__(self, points: torch.Tensor, batch_index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean voxel features ``[M, num_features]`` and int32 coordinates ``[M, 4]`` ``(batch_index, z, y, x)``."""
        if points.shape[1] < self.num_features:
            raise ValueError(f"points have {points.shape[1]} columns, the voxel features need {self.num_features}")
        voxels = hard_voxelize(
            points, self.voxel_size, self.point_cloud_range, self.max_points_per_voxel, self.max_voxels
        )
        features = HardSimpleVFE(self.num_features)(voxels.points, voxels.num_points)
        batch = torch.full((len(voxels.coords), 1), batch_index, dtype=torch.int32, device=points.device)
        return features, torch.cat([batch, voxels.coords], dim=1)


@dataclass
class EncoderInput:
    """One batch for an encoder: voxel features ``[M, C]``, coordinates ``[M, 4]`` (b, z, y, x) int32."""

    name: str
    num_points: int
    features: torch.Tensor
    coors: torch.Tensor
    batch_size: int


def voxelize_batch(name: str, clouds: list[PointCloud], voxelization: Voxelization, device) -> EncoderInput:
    """The clouds as samples ``0 .. len(clouds) - 1`` of one batch, voxelised on ``device``."""
    parts = [voxelization(cloud.points.to(device), b) for b, cloud in enumerate(clouds)]
    return EncoderInput(
        name=name,
        num_points=sum(len(cloud.points) for cloud in clouds),
        features=torch.cat([features for features, _ in parts]),
        coors=torch.cat([coors for _, coors in parts]),
        batch_size=len(clouds),
    )


def cyclic_batches(clouds: list[PointCloud], batch_size: int) -> list[tuple[str, list[PointCloud]]]:
    """Consecutive clouds in groups of ``batch_size``, wrapping around so every batch is full.

    ``ceil(len(clouds) / batch_size)`` batches; e.g. 3 clouds in batches of 8: ``0 1 2 0 1 2 0 1``.
    Names join the cloud names with ``+``.
    """
    if not clouds:
        raise ValueError("no point clouds to batch")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = []
    for start in range(0, len(clouds), batch_size):
        group = [clouds[(start + i) % len(clouds)] for i in range(batch_size)]
        batches.append(("+".join(cloud.name for cloud in group), group))
    return batches
