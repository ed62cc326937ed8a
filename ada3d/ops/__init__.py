"""Geometry ops in torch (CPU and GPU): voxelisation."""

from ada3d.ops.voxelize import Voxels, dynamic_voxelize, grid_shape, hard_voxelize

__all__ = ["Voxels", "dynamic_voxelize", "grid_shape", "hard_voxelize"]
