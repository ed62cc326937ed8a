"""Detectors: mmengine ``BaseModel`` s tying the stages together."""

from ada3d.models.detectors.ada3d_voxelnet import Ada3DVoxelNet
from ada3d.models.detectors.voxelnet import VoxelNet

__all__ = ["Ada3DVoxelNet", "VoxelNet"]
