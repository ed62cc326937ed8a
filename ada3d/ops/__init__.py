"""Geometry ops in torch (CPU and GPU): voxelisation."""

from ada3d.ops.voxelize import hard_voxelize

__all__ = ["hard_voxelize"]
