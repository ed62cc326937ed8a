"""to_bev: the sparse height compression equals the dense view ``[B, C * D, H, W]``, values and gradients."""

from __future__ import annotations

import pytest
import torch

from ada3d.models.adaptive.height_compression import to_bev
from sparse_ops import SparseTensor
from tests.sparse_ops.cases import random_sparse_tensor


@pytest.mark.parametrize("density, seed", [(0.05, 0), (0.4, 1), (1.0, 2)])
def test_equals_the_dense_view_with_channel_c_times_depth_plus_d(density, seed):
    x = random_sparse_tensor((3, 7, 6), 2, 4, density, seed)
    bev = to_bev(x)
    batch, channels, depth, height, width = x.dense().shape
    assert bev.spatial_shape == (7, 6) and bev.batch_size == 2 and bev.num_channels == 12
    assert bev.indices.dtype == torch.int32
    torch.testing.assert_close(bev.dense(), x.dense().view(batch, channels * depth, height, width), rtol=0, atol=0)
    columns = torch.unique(x.indices[:, [0, 2, 3]], dim=0)  # sorted lexicographically, as the output sites
    assert torch.equal(bev.indices, columns)


def test_channel_order_of_one_voxel():
    features = torch.tensor([[1.0, 2.0]])
    x = SparseTensor(features, torch.tensor([[0, 2, 1, 0]], dtype=torch.int32), (3, 2, 2), 1)
    bev = to_bev(x)
    assert torch.equal(bev.indices, torch.tensor([[0, 1, 0]], dtype=torch.int32))
    assert torch.equal(bev.features, torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 2.0]]))  # c * D + d, d = 2


def test_gradients_equal_those_through_the_dense_view():
    x = random_sparse_tensor((2, 5, 5), 2, 3, 0.3, seed=3)
    features = x.features.clone().requires_grad_()
    grad = torch.randn(2, 6, 5, 5, dtype=torch.float64)
    to_bev(x.replace_feature(features)).dense().backward(grad)
    reference = x.features.clone().requires_grad_()
    x.replace_feature(reference).dense().view(2, 6, 5, 5).backward(grad)
    torch.testing.assert_close(features.grad, reference.grad, rtol=0, atol=0)


def test_empty_tensor_and_2d_input():
    x = SparseTensor(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.int32), (2, 3, 3), 2)
    bev = to_bev(x)
    assert bev.features.shape == (0, 8) and bev.indices.shape == (0, 3)
    with pytest.raises(ValueError, match="needs a 3D SparseTensor"):
        to_bev(bev)
