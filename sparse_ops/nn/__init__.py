"""Sparse modules with spconv v2 names, semantics and weight layout."""

from sparse_ops.nn.conv import (
    SparseConv2d,
    SparseConv3d,
    SparseConvolution,
    SparseInverseConv2d,
    SparseInverseConv3d,
    SubMConv2d,
    SubMConv3d,
)
from sparse_ops.nn.module import SparseModule
from sparse_ops.nn.norm import apply_to_features, masked_batch_norm
from sparse_ops.nn.pool import SparseMaxPool, SparseMaxPool2d, SparseMaxPool3d
from sparse_ops.nn.sequential import SparseSequential, ToDense

__all__ = [
    "SparseConv2d",
    "SparseConv3d",
    "SparseConvolution",
    "SparseInverseConv2d",
    "SparseInverseConv3d",
    "SparseMaxPool",
    "SparseMaxPool2d",
    "SparseMaxPool3d",
    "SparseModule",
    "SparseSequential",
    "SubMConv2d",
    "SubMConv3d",
    "ToDense",
    "apply_to_features",
    "masked_batch_norm",
]
