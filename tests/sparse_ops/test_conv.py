"""Every sparse conv type against a dense float64 reference: forward, feature and weight gradients."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConvolution, SparseInverseConv3d, SparseSequential, SubMConv3d
from tests.sparse_ops.cases import case_conv, case_tensor, conv_cases, random_sparse_tensor
from tests.sparse_ops.reference import brute_force_output_sites, dense_conv, dense_inverse_conv

SETTINGS = settings(max_examples=60, deadline=None)


def _conv(case, subm=False):
    conv = case_conv(case, subm, indice_key="k").double()
    with torch.no_grad():  # non-trivial bias so a dropped bias term shows
        if conv.bias is not None:
            conv.bias.normal_()
    return conv


def _input(case):
    x = case_tensor(case)
    features = x.features.clone().requires_grad_(True)
    return x.replace_feature(features), features


def _check_against_dense(conv, x, features, reference_fn):
    """Forward values and gradients of a random linear loss, ours vs the dense reference."""
    y = conv(x)
    grad_out = torch.randn_like(y.features)
    (y.features * grad_out).sum().backward()
    ours = (y.features.detach(), features.grad.clone(), conv.weight.grad.clone())

    ref_features = features.detach().clone().requires_grad_(True)
    ref_weight = conv.weight.detach().clone().requires_grad_(True)
    expected = reference_fn(ref_features, ref_weight, y.indices)
    (expected * grad_out).sum().backward()
    torch.testing.assert_close(ours[0], expected.detach(), rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours[1], ref_features.grad, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours[2], ref_weight.grad, rtol=1e-10, atol=1e-10)
    return y


@SETTINGS
@given(case=conv_cases(subm=True))
def test_submanifold_conv_matches_dense(case):
    conv = _conv(case, subm=True)
    x, features = _input(case)
    y = _check_against_dense(
        conv,
        x,
        features,
        lambda f, w, out: dense_conv(f, x.indices, x.spatial_shape, x.batch_size, w, conv.bias, conv.geometry, out),
    )
    assert y.indices is x.indices and y.spatial_shape == x.spatial_shape


@SETTINGS
@given(case=conv_cases())
def test_strided_conv_matches_dense_and_brute_force_sites(case):
    conv = _conv(case)
    x, features = _input(case)
    y = _check_against_dense(
        conv,
        x,
        features,
        lambda f, w, out: dense_conv(f, x.indices, x.spatial_shape, x.batch_size, w, conv.bias, conv.geometry, out),
    )
    sites = {tuple(row) for row in y.indices.tolist()}
    assert len(sites) == y.indices.shape[0], "duplicate output sites"
    assert sites == brute_force_output_sites(x.indices, x.spatial_shape, conv.geometry)
    assert y.spatial_shape == conv.geometry.output_shape(x.spatial_shape)


@SETTINGS
@given(case=conv_cases())
def test_inverse_conv_restores_sites_and_matches_dense_transpose(case):
    down = _conv(case)
    x, _ = _input(case)
    y = down(x)
    inverse = SparseConvolution(
        case["ndim"],
        case["out_channels"],
        case["in_channels"],
        case["kernel_size"],
        bias=case["bias"],
        inverse=True,
        indice_key="k",
    ).double()
    y_features = y.features.detach().clone().requires_grad_(True)
    z = _check_against_dense(
        inverse,
        y.replace_feature(y_features),
        y_features,
        lambda f, w, out: dense_inverse_conv(
            f, y.indices, y.spatial_shape, y.batch_size, w, inverse.bias, down.geometry, x.spatial_shape, out
        ),
    )
    assert torch.equal(z.indices, x.indices) and z.spatial_shape == x.spatial_shape


@pytest.mark.parametrize(
    "kernel_size, stride, padding",
    [
        (3, 2, 1),  # SECOND / CenterPoint downsampling
        (3, 2, (0, 1, 1)),  # SECOND stage 4
        ((3, 1, 1), (2, 1, 1), 0),  # SECOND conv_out
        (1, 1, 0),
        (2, 2, 0),
    ],
)
def test_second_encoder_geometries(kernel_size, stride, padding):
    case = dict(
        ndim=3,
        in_channels=3,
        out_channels=2,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=1,
        bias=False,
        spatial_shape=(9, 10, 8),
        batch_size=2,
        density=0.15,
        seed=7,
    )
    conv = _conv(case)
    x, features = _input(case)
    _check_against_dense(
        conv,
        x,
        features,
        lambda f, w, out: dense_conv(f, x.indices, x.spatial_shape, x.batch_size, w, None, conv.geometry, out),
    )


def test_shared_indice_key_reuses_map_and_unet_round_trip():
    """subm layers sharing a key reuse one map; an encoder-decoder pair restores the input sites."""
    x = random_sparse_tensor((12, 12, 12), 2, 4, 0.1, seed=3)
    net = SparseSequential(
        SubMConv3d(4, 8, 3, indice_key="subm1"),
        torch.nn.ReLU(),
        SubMConv3d(8, 8, 3, indice_key="subm1"),
        SparseConvolution(3, 8, 16, 3, 2, 1, indice_key="down1"),
        SparseInverseConv3d(16, 4, 3, indice_key="down1"),
    ).double()
    maps_built = []
    first = net[0]
    original = type(x.kernel_maps).get_or_build

    def spy(self, key, *args):
        maps_built.append(key not in self)
        return original(self, key, *args)

    type(x.kernel_maps).get_or_build = spy
    try:
        y = net(x)
    finally:
        type(x.kernel_maps).get_or_build = original
    assert maps_built == [True, False, True], "the second subm1 layer must reuse the cached map"
    assert torch.equal(y.indices, x.indices) and y.num_channels == 4
    assert first.kernel_size == (3, 3, 3)


def test_empty_input_gives_empty_output_and_zero_gradients():
    weight_holder = SubMConv3d(3, 5, 3).double()
    x = SparseTensor(
        torch.zeros(0, 3, dtype=torch.float64, requires_grad=True), torch.zeros(0, 4, dtype=torch.int32), (5, 5, 5), 2
    )
    for conv in (weight_holder, SparseConvolution(3, 3, 5, 3, 2, 1).double()):
        y = conv(x)
        assert y.features.shape == (0, 5) and y.indices.shape == (0, 4)
        y.features.sum().backward()
        assert torch.count_nonzero(conv.weight.grad) == 0
        assert y.dense().shape == (2, 5, *y.spatial_shape)


def test_batch_with_an_empty_sample_matches_each_sample_alone():
    x = random_sparse_tensor((6, 7, 8), 3, 2, 0.2, seed=11)
    keep = x.indices[:, 0] != 1  # sample 1 has no sites
    x = SparseTensor(x.features[keep], x.indices[keep], x.spatial_shape, 3)
    conv = SparseConvolution(3, 2, 3, 3, 2, 1).double()
    y = conv(x)
    assert not (y.indices[:, 0] == 1).any()
    for b in (0, 2):
        rows = x.indices[:, 0] == b
        alone = SparseTensor(
            x.features[rows], x.indices[rows] * torch.tensor([0, 1, 1, 1], dtype=torch.int32), x.spatial_shape, 1
        )
        y_alone = conv(alone)
        ours = y.features[y.indices[:, 0] == b]
        torch.testing.assert_close(ours, y_alone.features)
    assert y.dense()[1].abs().sum() == 0
