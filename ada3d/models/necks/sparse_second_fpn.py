"""SECOND's FPN on a sparse BEV backbone's active pixels (Ada3D): the dense neck's numbers, sparse memory."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ada3d.models.layers.norm import has_inference_affine, inference_affine
from ada3d.models.necks.second_fpn import SECONDFPN
from ada3d.registry import MODELS
from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import active_plan
from sparse_ops.kmap.kernel_map import PADDING_KEY, number_distinct
from sparse_ops.utils import decode_coords, encode_coords


@MODELS.register_module()
class SparseSECONDFPN(SECONDFPN):
    """:class:`SECONDFPN` (same arguments and parameters) that also takes the stages of a sparse BEV backbone.

    Given dense maps it is SECONDFPN. Given one 2D :class:`SparseTensor` per backbone stage (zero at the
    inactive pixels, e.g. :meth:`SparseSECOND.forward_sparse`) in eval mode, it computes each branch only at
    the pixels its active ones reach: a transposed conv with kernel = stride ``s`` sends each input pixel to its
    own ``s x s`` output block, so a branch is one GEMM of the active rows. Every other output pixel of a branch
    is ``ReLU(BN(0))``, one constant vector, so the output is a :class:`SparseBevMap`: the concatenated branches
    at the union of their output pixels, and that background elsewhere. Its :meth:`SparseBevMap.dense` equals
    the dense neck's output on the densified stages (up to float rounding). In training the stages are
    densified and the dense neck runs (BatchNorm's batch statistics are over every pixel), so training and
    inference compute the same function.

    The sparse path needs upsampling branches (``upsample_strides`` integers >= 1, transposed convs); in padded
    execution (:mod:`sparse_ops.kmap.capacity`) it numbers the union pixels into the plan's next capacity without
    a host sync.

    Shapes: a sequence of 2D SparseTensors ``[N_i, in_channels[i]]`` on grids ``(H_i, W_i)`` with
    ``H_i * upsample_strides[i]`` all equal -> a list holding one :class:`SparseBevMap` of
    ``sum(out_channels)`` channels.
    """

    def forward(self, features: Sequence[torch.Tensor | SparseTensor]) -> list[torch.Tensor | SparseBevMap]:
        if not all(isinstance(x, SparseTensor) for x in features):
            return super().forward(features)
        if self.training:
            return super().forward([x.dense() for x in features])
        if len(features) != len(self.deblocks):
            raise ValueError(f"SparseSECONDFPN got {len(features)} maps, built for {len(self.deblocks)}")
        return [_sparse_neck([_folded_branch(deblock) for deblock in self.deblocks], features)]

    def fused_conv_calls(self, inputs: tuple, output: list) -> list[tuple[str, nn.Module, SparseTensor, None]]:
        """The resampling convs the sparse path ran through their weights (FLOPs counted by
        :class:`ada3d.benchmark.flops.FlopCounter`: each active input pixel feeds one kernel window); none for
        dense inputs, where the deblocks run as modules."""
        (features,) = inputs
        if not output or not isinstance(output[0], SparseBevMap):
            return []
        return [(f"deblocks.{i}.0", deblock[0], x, None) for i, (deblock, x) in enumerate(zip(self.deblocks, features))]


class _Branch(NamedTuple):
    """One neck branch in eval mode, BatchNorm folded: ``ReLU(x @ weight + shift)`` gives each active input pixel's
    ``s_y x s_x`` output block (row-major within it, ``C_out`` channels per pixel)."""

    weight: torch.Tensor  # [C_in, s_y * s_x * C_out]
    shift: torch.Tensor  # [C_out]
    factor: tuple[int, int]  # (s_y, s_x)

    def rows(self, x: SparseTensor) -> torch.Tensor:
        """``[N * s_y * s_x, C_out]`` the output blocks of the rows of ``x``, in :func:`_upsampled_indices` order."""
        dtype = x.features.dtype
        blocks = torch.addmm(self.shift.repeat(self.factor[0] * self.factor[1]).to(dtype), x.features,
                             self.weight.to(dtype))  # fmt: skip
        return blocks.relu_().view(-1, self.shift.shape[0])

    @property
    def background(self) -> torch.Tensor:
        """``[C_out]`` the branch's value at every pixel no active input reaches: ``ReLU(BN(0))``."""
        return F.relu(self.shift)


def _folded_branch(deblock: nn.Sequential) -> _Branch:
    """A deblock (transposed conv with kernel = stride, BatchNorm2d, ReLU) with its BatchNorm folded."""
    resample, norm, _ = deblock
    if not isinstance(resample, nn.ConvTranspose2d) or resample.kernel_size != resample.stride:
        raise NotImplementedError(
            "SparseSECONDFPN's sparse path needs upsampling branches (integer upsample_strides >= 1, transposed "
            f"convs with kernel = stride), got {resample}; feed it dense maps instead"
        )
    if not has_inference_affine(norm):
        raise NotImplementedError(
            f"SparseSECONDFPN's sparse path folds a BatchNorm2d with running statistics, got {norm}"
        )
    scale, shift = inference_affine(norm)
    # [C_in, C_out, s_y, s_x] -> [C_in, s_y * s_x * C_out], BN's scale folded into the output channels
    weight = (resample.weight * scale[:, None, None]).permute(0, 2, 3, 1).flatten(1)
    return _Branch(weight, shift, tuple(resample.stride))


def _upsampled_indices(indices: torch.Tensor, factor: tuple[int, int]) -> torch.Tensor:
    """``[N, 3]`` ``(b, y, x)`` -> ``[N * s_y * s_x, 3]``: each pixel's ``s_y x s_x`` block, row-major within it,
    padding rows (batch -1) staying padding rows."""
    block_y, block_x = torch.meshgrid(
        torch.arange(factor[0], device=indices.device), torch.arange(factor[1], device=indices.device), indexing="ij"
    )
    batch = indices[:, :1].expand(-1, factor[0] * factor[1])
    rows = indices[:, 1:2] * factor[0] + block_y.reshape(1, -1).int()
    cols = indices[:, 2:3] * factor[1] + block_x.reshape(1, -1).int()
    return torch.stack((batch, rows, cols), dim=-1).reshape(-1, 3)


def _sparse_neck(branches: list[_Branch], stages: Sequence[SparseTensor]) -> SparseBevMap:
    """The branches' channels concatenated at the union of their output pixels (sorted ``(b, y, x)``), each
    branch's background where it has no row. The union is numbered first, so each branch's rows go straight into
    the output (one branch's rows alive at a time); in padded execution it takes the plan's next capacity."""
    grids = {(x.spatial_shape[0] * b.factor[0], x.spatial_shape[1] * b.factor[1]) for b, x in zip(branches, stages)}
    if len(grids) > 1:
        raise ValueError(f"SparseSECONDFPN branches reach different sizes {sorted(grids)}: check upsample_strides")
    (grid,) = grids
    batch_size = stages[0].batch_size
    indices = torch.cat([_upsampled_indices(x.indices, b.factor) for b, x in zip(branches, stages)])
    plan = active_plan()
    capacity = None if plan is None else plan.next_capacity(bound=indices.shape[0])
    keys = encode_coords(indices.clamp(min=0), grid)
    distinct, ids, count = number_distinct(keys, indices[:, 0] >= 0, capacity, batch_size * grid[0] * grid[1])
    if plan is not None:
        plan.record(count)
    num_rows = distinct.shape[0]
    dtype = stages[0].features.dtype
    background = torch.cat([branch.background for branch in branches]).to(dtype)
    out = background.expand(num_rows + 1, -1).clone()  # row num_rows takes the invalid rows, cut off
    start, channel = 0, 0
    for branch, x in zip(branches, stages):
        rows = x.indices.shape[0] * branch.factor[0] * branch.factor[1]
        channels = branch.shift.shape[0]
        out[ids[start : start + rows], channel : channel + channels] = branch.rows(x)
        start, channel = start + rows, channel + channels
    is_row = distinct != PADDING_KEY
    out_indices = decode_coords(distinct.where(is_row, 0), grid).where(is_row[:, None], -1)
    return SparseBevMap(SparseTensor(out[:num_rows], out_indices, grid, batch_size, validate=False), background)
