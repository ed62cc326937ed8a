"""SparseTensor: construction checks, immutability, dense round trips, cache sharing."""

from __future__ import annotations

import pytest
import torch

from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConv2d, SparseSequential, SubMConv2d, ToDense
from tests.sparse_ops.cases import random_sparse_tensor


def test_dense_round_trip_3d_and_2d():
    for shape in ((4, 5, 6), (7, 3)):
        x = random_sparse_tensor(shape, 2, 3, 0.3, seed=1)
        dense = x.dense()
        assert dense.shape == (2, 3, *shape)
        back = SparseTensor.from_dense(dense)
        assert {tuple(r) for r in back.indices.tolist()} == {tuple(r) for r in x.indices.tolist()}
        torch.testing.assert_close(back.dense(), dense)
        torch.testing.assert_close(x.dense(channels_first=False), dense.movedim(1, -1))


def test_features_are_read_only_and_replace_feature_shares_sites_and_cache():
    x = random_sparse_tensor((5, 5), 1, 2, 0.5, seed=2)
    with pytest.raises(AttributeError, match="replace_feature"):
        x.features = x.features * 2
    y = x.replace_feature(x.features * 2)
    assert y.indices is x.indices and y.kernel_maps is x.kernel_maps
    with pytest.raises(ValueError, match="one row per site"):
        x.replace_feature(x.features[:-1])


def test_new_indices_get_a_fresh_cache():
    x = random_sparse_tensor((6, 6), 1, 2, 0.5, seed=3)
    SubMConv2d(2, 2, 3, indice_key="a").double()(x)
    assert "a" in x.kernel_maps
    fresh = SparseTensor(x.features, x.indices.clone(), x.spatial_shape, 1)
    assert "a" not in fresh.kernel_maps


def test_int64_indices_are_stored_as_int32():
    x = SparseTensor(torch.randn(2, 1), torch.tensor([[0, 1, 1], [0, 2, 3]]), (4, 4), 1)
    assert x.indices.dtype == torch.int32


def test_to_dense_in_sequential():
    x = random_sparse_tensor((8, 8), 2, 2, 0.4, seed=4)
    net = SparseSequential(SparseConv2d(2, 3, 3, 2, 1), torch.nn.ReLU(), ToDense()).double()
    out = net(x)
    assert out.shape == (2, 3, 4, 4) and (out >= 0).all()


def test_dense_backward_gathers_the_grid_gradient():
    for channels_first in (True, False):
        x = random_sparse_tensor((3, 4, 5), 2, 3, 0.4, seed=5)
        features = x.features.clone().requires_grad_(True)
        grid = x.replace_feature(features).dense(channels_first=channels_first)
        weights = torch.randn_like(grid)
        (grid * weights).sum().backward()
        channels_last = weights.movedim(1, -1) if channels_first else weights
        expected = channels_last[tuple(x.indices.long().unbind(1))]
        torch.testing.assert_close(features.grad, expected)
