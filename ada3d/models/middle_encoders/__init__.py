"""Sparse 3D encoders: voxel features -> BEV feature maps."""

from ada3d.models.middle_encoders.sparse_encoder import SparseEncoder
from ada3d.models.middle_encoders.voxel_res_backbone import SparseBasicBlock, VoxelResBackBone8x

__all__ = ["SparseBasicBlock", "SparseEncoder", "VoxelResBackBone8x"]
