"""VoxelResBackBone8x: OpenPCDet's shapes and names, and numerics against a dense float64 network.

The reference runs every layer as a dense ``torch.nn.functional.conv3d`` over the whole grid and
tracks the active sites as a mask (a submanifold conv keeps them, a strided conv activates every
output whose receptive field holds an active input), so it shares no code with sparse_ops' maps.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ada3d.models.middle_encoders import SparseBasicBlock, VoxelResBackBone8x
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.nn import SparseConvolution, SparseSequential
from tests.sparse_ops.cases import random_sparse_tensor

TINY_SHAPE = (41, 16, 16)  # z as on nuScenes (41 -> 21 -> 11 -> 5 -> 2), small y and x (-> 2)


def test_builds_from_config_with_openpcdet_shapes_and_names():
    encoder = MODELS.build(dict(type="VoxelResBackBone8x", in_channels=5, sparse_shape=[41, 1440, 1440]))
    assert encoder.out_spatial_shape == (2, 180, 180) and encoder.out_channels == 256
    state = encoder.state_dict()
    assert state["conv_input.0.weight"].shape == (16, 3, 3, 3, 5)
    assert "conv_input.0.bias" not in state and "conv2.0.0.bias" not in state  # convs before a norm: no bias
    assert state["conv1.1.conv2.weight"].shape == (16, 3, 3, 3, 16)
    assert state["conv1.1.conv2.bias"].shape == (16,)  # residual-block convs carry a bias, as in OpenPCDet
    assert state["conv2.0.0.weight"].shape == (32, 3, 3, 3, 16)
    assert state["conv3.2.bn2.running_var"].shape == (64,)
    assert state["conv4.0.0.weight"].shape == (128, 3, 3, 3, 64)
    assert state["conv_out.0.weight"].shape == (128, 3, 1, 1, 128)
    assert sum(isinstance(m, SparseBasicBlock) for m in encoder.modules()) == 8
    strided = [m for m in encoder.modules() if isinstance(m, SparseConvolution) and not m.subm]
    assert [(m.indice_key, m.geometry.stride, m.geometry.padding) for m in strided] == [
        ("spconv2", (2, 2, 2), (1, 1, 1)),
        ("spconv3", (2, 2, 2), (1, 1, 1)),
        ("spconv4", (2, 2, 2), (0, 1, 1)),
        ("spconv_down2", (2, 1, 1), (0, 0, 0)),
    ]
    assert {m.indice_key for m in encoder.conv3.modules() if isinstance(m, SparseConvolution) and m.subm} == {"res3"}
    bn = encoder.conv1[0].bn1
    assert bn.eps == 1e-3 and bn.momentum == 0.01


def test_wrong_number_of_stage_widths_raises():
    with pytest.raises(ValueError, match="4 stage widths"):
        VoxelResBackBone8x(5, TINY_SHAPE, channels=(16, 32, 64))


def _randomised(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """float64, eval mode, with non-trivial norm affine parameters and running statistics."""
    torch.manual_seed(seed)
    module = module.double().eval()
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
    return module


class DenseReference:
    """Dense float64 evaluation of sparse layers: ``(grid [B, C, *S], mask [B, 1, *S])`` pairs."""

    @staticmethod
    def conv(conv: SparseConvolution, grid, mask):
        g = conv.geometry
        weight = conv.weight.movedim(-1, 1)  # [C_out, C_in, *kernel]
        if g.subm:
            out = F.conv3d(grid, weight, conv.bias, padding=[k // 2 for k in g.kernel_size])
            return out * mask, mask
        out = F.conv3d(grid, weight, conv.bias, g.stride, g.padding)
        ones = torch.ones((1, 1, *g.kernel_size), dtype=mask.dtype)
        out_mask = (F.conv3d(mask, ones, None, g.stride, g.padding) > 0).to(mask.dtype)
        return out * out_mask, out_mask

    @staticmethod
    def pointwise(module: torch.nn.Module, grid, mask):
        channels_last = grid.movedim(1, -1)
        out = module(channels_last.reshape(-1, grid.shape[1])).reshape(channels_last.shape).movedim(-1, 1)
        return out * mask

    def block(self, block: SparseBasicBlock, grid, mask):
        out, _ = self.conv(block.conv1, grid, mask)
        out = self.pointwise(torch.nn.Sequential(block.bn1, block.relu), out, mask)
        out, _ = self.conv(block.conv2, out, mask)
        return self.pointwise(block.relu, self.pointwise(block.bn2, out, mask) + grid, mask)

    def sequential(self, modules, grid, mask):
        for module in modules:
            if isinstance(module, SparseSequential):
                grid, mask = self.sequential(module, grid, mask)
            elif isinstance(module, SparseBasicBlock):
                grid = self.block(module, grid, mask)
            elif isinstance(module, SparseConvolution):
                grid, mask = self.conv(module, grid, mask)
            else:
                grid = self.pointwise(module, grid, mask)
        return grid, mask


def _dense_input(x: SparseTensor):
    grid = x.dense()
    mask = torch.zeros((x.batch_size, 1, *x.spatial_shape), dtype=grid.dtype)
    mask[(x.indices[:, 0].long(), 0, *x.indices[:, 1:].long().unbind(1))] = 1
    return grid, mask


def test_basic_block_matches_dense_reference_forward_and_backward():
    block = _randomised(SparseBasicBlock(8, "res", dict(type="BN1d", eps=1e-3, momentum=0.01)), seed=0)
    x = random_sparse_tensor((9, 10, 11), 2, 8, 0.15, seed=1)
    features = x.features.clone().requires_grad_()
    out = block(x.replace_feature(features))
    assert torch.equal(out.indices, x.indices)

    dense_features = x.features.clone().requires_grad_()
    grid, mask = _dense_input(x.replace_feature(dense_features))
    expected = DenseReference().block(block, grid, mask)
    torch.testing.assert_close(out.dense(), expected, rtol=1e-10, atol=1e-12)

    probe = torch.randn_like(out.features)
    grad_sparse, grad_weight = torch.autograd.grad((out.features * probe).sum(), (features, block.conv2.weight))
    dense_probe = SparseTensor(probe, x.indices, x.spatial_shape, x.batch_size).dense()
    grad_dense, grad_weight_dense = torch.autograd.grad(
        (expected * dense_probe).sum(), (dense_features, block.conv2.weight)
    )
    torch.testing.assert_close(grad_sparse, grad_dense, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_weight, grad_weight_dense, rtol=1e-10, atol=1e-12)


def test_encoder_matches_dense_reference_with_an_empty_sample():
    encoder = _randomised(VoxelResBackBone8x(5, TINY_SHAPE, channels=(4, 6, 8, 8), output_channels=6), seed=2)
    x = random_sparse_tensor(TINY_SHAPE, 1, 5, 0.05, seed=3)
    with torch.no_grad():
        bev = encoder(x.features, x.indices, 2)  # sample 1 has no voxels
        grid, mask = _dense_input(SparseTensor(x.features, x.indices, TINY_SHAPE, 2))
        layers = [encoder.conv_input, encoder.conv1, encoder.conv2, encoder.conv3, encoder.conv4, encoder.conv_out]
        expected, _ = DenseReference().sequential(layers, grid, mask)
    assert encoder.out_spatial_shape == (2, 2, 2)
    assert bev.shape == (2, encoder.out_channels, 2, 2)
    torch.testing.assert_close(bev, expected.reshape(bev.shape), rtol=1e-10, atol=1e-12)
    assert bev[0].abs().sum() > 0 and bev[1].abs().sum() == 0


def test_padded_execution_as_cuda_graphs_run_it_changes_nothing():
    """The CudaGraphRunner pads inputs with batch -1 rows and sizes strided outputs by fixed capacities;
    residual additions and the dense output must ignore both."""
    encoder = _randomised(VoxelResBackBone8x(5, TINY_SHAPE, channels=(4, 6, 8, 8), output_channels=6), seed=4)
    x = random_sparse_tensor(TINY_SHAPE, 2, 5, 0.05, seed=5)
    padding = 37
    features = torch.cat([x.features, torch.randn(padding, 5, dtype=x.features.dtype)])
    indices = torch.cat([x.indices, torch.full((padding, 4), -1, dtype=torch.int32)])
    with torch.no_grad():
        expected = encoder(x.features, x.indices, 2)
        learned = CapacityPlan()
        with padded_execution(learned):
            encoder(x.features, x.indices, 2)
        with padded_execution(CapacityPlan([int(c) + 11 for c in learned.counts])):
            padded = encoder(features, indices, 2)
    assert len(learned.counts) == 4  # conv2, conv3, conv4 and conv_out are strided
    torch.testing.assert_close(padded, expected, rtol=1e-12, atol=1e-12)
