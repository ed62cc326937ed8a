"""Bad input fails at the boundary with a message that names the problem."""

from __future__ import annotations

import pytest
import torch

from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConv3d, SparseInverseConv3d, SubMConv2d, SubMConv3d
from tests.sparse_ops.cases import random_sparse_tensor


def _indices(rows):
    return torch.tensor(rows, dtype=torch.int32)


@pytest.mark.parametrize(
    "row, column",
    [([0, 4, 0, 0], "dim0"), ([0, 0, -1, 0], "dim1"), ([0, 0, 0, 6], "dim2"), ([2, 0, 0, 0], "batch")],
)
def test_indices_outside_spatial_shape_raise(row, column):
    with pytest.raises(ValueError, match="outside the grid") as info:
        SparseTensor(torch.zeros(2, 1), _indices([[0, 1, 1, 1], row]), (4, 5, 6), 2)
    assert "row 1" in str(info.value) and str(row) in str(info.value)


def test_wrong_dtypes_raise():
    with pytest.raises(TypeError, match="floating-point"):
        SparseTensor(torch.zeros(1, 1, dtype=torch.int64), _indices([[0, 0, 0]]), (2, 2), 1)
    with pytest.raises(TypeError, match="integer"):
        SparseTensor(torch.zeros(1, 1), torch.zeros(1, 3), (2, 2), 1)
    x = random_sparse_tensor((4, 4, 4), 1, 2, 0.5, seed=0)  # float64 features
    with pytest.raises(TypeError, match="float64 but the weight is torch.float32"):
        SubMConv3d(2, 2, 3)(x)


def test_shape_mismatches_raise():
    with pytest.raises(ValueError, match=r"indices must be \[N, 4\]"):
        SparseTensor(torch.zeros(1, 1), _indices([[0, 0, 0]]), (2, 2, 2), 1)
    with pytest.raises(ValueError, match="rows"):
        SparseTensor(torch.zeros(2, 1), _indices([[0, 0, 0]]), (2, 2), 1)
    x = random_sparse_tensor((4, 4, 4), 1, 2, 0.5, seed=0)
    with pytest.raises(ValueError, match=r"SubMConv3d\(3 -> 4\) got features with 2 channels"):
        SubMConv3d(3, 4, 3).double()(x)
    with pytest.raises(ValueError, match="2D but got a 3D"):
        SubMConv2d(2, 2, 3).double()(x)


def test_bad_geometry_raises():
    with pytest.raises(ValueError, match="stride must be 1"):
        SubMConv3d(1, 1, 3, stride=2)
    with pytest.raises(ValueError, match="kernel_size must be an int or 3 ints"):
        SparseConv3d(1, 1, (3, 3))
    x = random_sparse_tensor((2, 2, 2), 1, 1, 1.0, seed=0)
    with pytest.raises(ValueError, match="does not fit"):
        SparseConv3d(1, 1, 5).double()(x)


def test_indice_key_misuse_raises():
    x = random_sparse_tensor((6, 6, 6), 1, 2, 0.3, seed=1)
    SubMConv3d(2, 2, 3, indice_key="a").double()(x)
    with pytest.raises(ValueError, match="indice_key 'a' holds a kernel map for"):
        SubMConv3d(2, 2, 5, indice_key="a").double()(x)
    y = SparseConv3d(2, 2, 3, 2, 1, indice_key="down").double()(x)
    with pytest.raises(ValueError, match="different sites"):
        SparseConv3d(2, 2, 3, 2, 1, indice_key="down").double()(y)
    with pytest.raises(KeyError, match="no convolution stored a kernel map under that key"):
        SparseInverseConv3d(2, 2, 3, indice_key="missing").double()(y)
    with pytest.raises(ValueError, match="kernel"):
        SparseInverseConv3d(2, 2, 2, indice_key="down").double()(y)
    with pytest.raises(ValueError, match="submanifold"):
        SparseInverseConv3d(2, 2, 3, indice_key="a").double()(x)
