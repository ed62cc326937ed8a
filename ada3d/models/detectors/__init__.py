"""Detectors: mmengine ``BaseModel`` s tying the stages together."""

from ada3d.models.detectors.voxelnet import VoxelNet

__all__ = ["VoxelNet"]
