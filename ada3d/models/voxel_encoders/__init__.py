"""Voxel feature encoders: points per voxel -> one feature vector per voxel."""

from ada3d.models.voxel_encoders.mean_vfe import DynamicSimpleVFE, HardSimpleVFE

__all__ = ["DynamicSimpleVFE", "HardSimpleVFE"]
