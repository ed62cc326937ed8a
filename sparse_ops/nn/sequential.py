"""Containers and conversions: SparseSequential lifts plain modules to features; ToDense."""

from __future__ import annotations

import torch
from torch import nn

from sparse_ops.nn.module import SparseModule
from sparse_ops.nn.norm import apply_to_features
from sparse_ops.tensor import SparseTensor


class SparseSequential(SparseModule, nn.Sequential):
    """``nn.Sequential`` for sparse tensors.

    Sparse modules (sparse convs, pools, nested SparseSequentials) get the SparseTensor; any other
    module (``BatchNorm1d``, ``ReLU``, ``Dropout``, ``Linear`` ...) is applied to its ``[N, C]``
    features (:func:`~sparse_ops.nn.norm.apply_to_features`: a training BatchNorm skips padding rows). After
    a :class:`ToDense`, later modules receive the dense tensor unchanged.
    """

    def forward(self, x: SparseTensor | torch.Tensor) -> SparseTensor | torch.Tensor:
        for module in self:
            if isinstance(module, SparseModule) or not isinstance(x, SparseTensor):
                x = module(x)
            else:
                x = x.replace_feature(apply_to_features(module, x))
        return x


class ToDense(SparseModule):
    """``SparseTensor`` -> dense ``[B, C, *spatial_shape]`` tensor (zeros at inactive sites)."""

    def forward(self, x: SparseTensor) -> torch.Tensor:
        return x.dense()
