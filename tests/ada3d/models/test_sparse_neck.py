"""SparseSECONDFPN and SparseBevMap: Ada3D's neck and head on the active pixels equal the dense ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ada3d.benchmark.flops import FlopCounter
from ada3d.models.layers.norm import inference_affine
from ada3d.registry import MODELS
from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from tests.ada3d.models.test_ada3d_voxelnet import batch, build  # noqa: F401  (batch is a fixture)

DOUBLE = dict(dtype=torch.float64)


def random_stage(batch_size: int, grid: tuple[int, int], channels: int, density: float, seed: int) -> SparseTensor:
    """Random active pixels (sample 1 left empty when batch_size > 1) with random features."""
    generator = torch.Generator().manual_seed(seed)
    active = torch.rand(batch_size, *grid, generator=generator) < density
    if batch_size > 1:
        active[1] = False
    indices = active.nonzero().int()
    features = torch.randn(len(indices), channels, generator=generator, **DOUBLE)
    return SparseTensor(features, indices, grid, batch_size)


def random_neck(upsample_strides, in_channels=(6, 10), out_channels=(4, 5)) -> nn.Module:
    """A SparseSECONDFPN in eval mode with random BatchNorm statistics (so the backgrounds are not zero)."""
    torch.manual_seed(0)
    neck = MODELS.build(dict(type="SparseSECONDFPN", in_channels=list(in_channels), out_channels=list(out_channels),
                             upsample_strides=list(upsample_strides))).double().eval()  # fmt: skip
    for deblock in neck.deblocks:
        norm = deblock[1]
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-1, 1)
    return neck


def dense_neck_output(neck: nn.Module, stages: list[SparseTensor]) -> torch.Tensor:
    (out,) = neck([stage.dense() for stage in stages])  # dense inputs: SECONDFPN's own forward
    return out


@pytest.mark.parametrize("strides", [(1, 2), (1, 2, 4), (2, 4)])
def test_sparse_neck_equals_the_dense_neck_on_the_densified_stages(strides):
    channels = (6, 10, 3)[: len(strides)]
    neck = random_neck(strides, channels, (4, 5, 2)[: len(strides)])
    finest = (16, 12)
    stages = [random_stage(3, (finest[0] * strides[0] // s, finest[1] * strides[0] // s), c, 0.2, seed=i)
              for i, (s, c) in enumerate(zip(strides, channels))]  # fmt: skip
    (sparse,) = neck(stages)
    assert isinstance(sparse, SparseBevMap)
    expected = dense_neck_output(neck, stages)
    assert sparse.shape == expected.shape
    torch.testing.assert_close(sparse.dense(), expected, rtol=1e-12, atol=1e-12)
    # the rows are the union of the branches' output blocks, each once, in (b, y, x) order
    rows = sparse.rows.indices
    keys = (rows[:, 0] * 1000 + rows[:, 1]) * 1000 + rows[:, 2]
    assert torch.equal(keys, keys.unique())
    assert (rows[:, 0] != 1).all()  # the empty sample has no row, only background
    assert (sparse.background != 0).any()  # ReLU(BN(0)) with random statistics: what the dense neck has there


def test_sparse_neck_in_padded_execution_keeps_padding_rows_out_of_the_map():
    neck = random_neck((1, 2))
    stages = [random_stage(2, (16, 12), 6, 0.2, seed=0), random_stage(2, (8, 6), 10, 0.3, seed=1)]
    padded_stages = [
        SparseTensor(torch.cat([s.features, torch.randn(5, s.num_channels, **DOUBLE)]),
                     torch.cat([s.indices, torch.full((5, 3), -1, dtype=torch.int32)]), s.spatial_shape, 2,
                     validate=False)
        for s in stages
    ]  # fmt: skip
    exact = len(neck(stages)[0].rows.indices)
    for capacity in (exact, exact + 7):
        plan = CapacityPlan([capacity])
        with padded_execution(plan):
            (padded,) = neck(padded_stages)
        assert padded.rows.features.shape[0] == capacity and int(plan.counts[0]) == exact
        assert (padded.rows.indices[exact:] == -1).all()
        torch.testing.assert_close(padded.dense(), dense_neck_output(neck, stages), rtol=1e-12, atol=1e-12)
        assert padded.num_active() == exact


def test_sparse_neck_trains_dense_and_refuses_downsampling_branches():
    neck = random_neck((1, 2)).train()
    stages = [random_stage(2, (16, 12), 6, 0.2, seed=0), random_stage(2, (8, 6), 10, 0.3, seed=1)]
    (out,) = neck(stages)  # batch statistics over every pixel, as the dense neck takes them
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, dense_neck_output(random_neck((1, 2)).train(), stages))
    downsampling = random_neck((1, 0.5), (6, 10)).eval()
    with pytest.raises(NotImplementedError, match="upsampling branches"):
        downsampling([random_stage(1, (16, 12), 6, 0.2, seed=0), random_stage(1, (32, 24), 10, 0.2, seed=1)])


def test_sparse_bev_map_pointwise_linear_and_dense():
    stage = random_stage(2, (7, 5), 4, 0.4, seed=3)
    background = torch.randn(4, **DOUBLE)
    bev_map = SparseBevMap(stage, background)
    dense = bev_map.dense()
    inactive = stage.dense().abs().sum(dim=1, keepdim=True) == 0  # random features are never all zero
    assert torch.equal(dense, torch.where(inactive, background[None, :, None, None], stage.dense()))
    weight, bias = torch.randn(3, 4, 1, 1, **DOUBLE), torch.randn(3, **DOUBLE)
    torch.testing.assert_close(bev_map.pointwise_linear(weight, bias).dense(),
                               nn.functional.conv2d(dense, weight, bias), rtol=1e-12, atol=1e-12)  # fmt: skip
    with pytest.raises(ValueError, match="background"):
        SparseBevMap(stage, torch.zeros(5, **DOUBLE))


def test_ada3d_sparse_neck_and_head_equal_the_dense_execution(batch):  # noqa: F811
    model = build(3).double().eval()
    inputs, _ = batch
    voxels = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in inputs["voxels"].items()}
    with torch.no_grad(), FlopCounter(model) as flops:
        bev = model.encode_3d(voxels)
        sparse_maps = model.encode_2d(bev)
        sparse_out = model.bbox_head(sparse_maps)
    # the predictor's convs run as modules (its BatchNorms as multiply-adds); the head's 1x1 convs on active pixels
    assert flops.by_module["predictor"] > 0 and flops.by_module["neck"] > 0
    head_channels = sum(conv.out_channels for conv in (model.bbox_head.conv_cls, model.bbox_head.conv_reg,
                                                         model.bbox_head.conv_dir_cls))  # fmt: skip
    active, channels = sparse_maps[0].num_active(), sparse_maps[0].shape[1]
    assert flops.by_module["bbox_head"] == 2 * active * channels * head_channels
    with torch.no_grad():
        model.backbone.execution = "dense"  # SparseSECOND on F.conv2d with masks, the neck on dense maps
        dense_maps = model.encode_2d(bev)
        dense_out = model.bbox_head(dense_maps)
    assert isinstance(sparse_maps[0], SparseBevMap) and isinstance(dense_maps[0], torch.Tensor)
    torch.testing.assert_close(sparse_maps[0].dense(), dense_maps[0], rtol=1e-10, atol=1e-10)
    for sparse_level, dense_level in zip(sparse_out, dense_out):
        torch.testing.assert_close(sparse_level, dense_level, rtol=1e-10, atol=1e-10)
    # the sparse map holds a fraction of the pixels
    assert sparse_maps[0].num_active() < 0.5 * dense_maps[0][:, 0].numel()


def test_flop_counter_counts_the_sparse_neck_and_head_by_active_pixels():
    neck = random_neck((1, 2))
    stages = [random_stage(2, (16, 12), 6, 0.2, seed=0), random_stage(2, (8, 6), 10, 0.3, seed=1)]
    with FlopCounter(neck) as counter:
        (out,) = neck(stages)
    rows = [len(stage.indices) for stage in stages]
    assert counter.by_layer == {"deblocks.0.0": 2 * rows[0] * 1 * 6 * 4, "deblocks.1.0": 2 * rows[1] * 4 * 10 * 5}
    counter.reset()
    with counter:
        neck([stage.dense() for stage in stages])  # dense: the deblock modules, every input position
    assert counter.by_layer["deblocks.1.0"] == 2 * 2 * 8 * 6 * 4 * 10 * 5


@pytest.mark.parametrize("affine", [True, False])
def test_inference_affine_is_the_eval_batchnorm(affine):
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(5, affine=affine, eps=1e-3).double().eval()
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    if affine:
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-1, 1)
    x = torch.randn(2, 5, 4, 3, **DOUBLE)
    scale, shift = inference_affine(norm)
    torch.testing.assert_close(x * scale[:, None, None] + shift[:, None, None], norm(x), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="no running statistics"):
        inference_affine(nn.BatchNorm2d(5, track_running_stats=False))
