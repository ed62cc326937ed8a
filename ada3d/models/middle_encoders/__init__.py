"""Sparse 3D encoders: voxel features -> BEV feature maps."""

from ada3d.models.middle_encoders.sparse_encoder import SparseEncoder

__all__ = ["SparseEncoder"]
