"""Sparse max pooling against dense max pooling over -inf-filled grids, forward and gradient."""

from __future__ import annotations

import torch
from hypothesis import given, settings

from sparse_ops.nn import SparseMaxPool2d, SparseMaxPool3d
from tests.sparse_ops.cases import case_tensor, conv_cases, random_sparse_tensor
from tests.sparse_ops.reference import brute_force_output_sites, dense_max_pool


@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_max_pool_matches_dense(case):
    pool_cls = SparseMaxPool3d if case["ndim"] == 3 else SparseMaxPool2d
    pool = pool_cls(case["kernel_size"], case["stride"], case["padding"], case["dilation"])
    x = case_tensor(case)
    features = x.features.clone().requires_grad_(True)
    y = pool(x.replace_feature(features))
    grad_out = torch.randn_like(y.features)
    (y.features * grad_out).sum().backward()

    ref_features = x.features.clone().requires_grad_(True)
    expected = dense_max_pool(ref_features, x.indices, x.spatial_shape, x.batch_size, pool.geometry, y.indices)
    (expected * grad_out).sum().backward()
    torch.testing.assert_close(y.features.detach(), expected.detach())
    torch.testing.assert_close(features.grad, ref_features.grad)
    assert {tuple(r) for r in y.indices.tolist()} == brute_force_output_sites(x.indices, x.spatial_shape, pool.geometry)


def test_max_pool_ties_go_to_one_input():
    x = random_sparse_tensor((4, 4), 1, 1, 1.0, seed=0)
    features = torch.ones_like(x.features, requires_grad=True)
    y = SparseMaxPool2d(2)(x.replace_feature(features))
    y.features.sum().backward()
    assert torch.equal(features.grad.sum(), torch.tensor(4.0, dtype=torch.float64))
    assert set(features.grad.flatten().tolist()) == {0.0, 1.0}
