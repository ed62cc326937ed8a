"""SECOND's sparse 3D encoder on sparse_ops, with mmdet3d's config arguments."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ada3d.models.layers.sparse_block import make_sparse_convmodule
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConvolution, SparseSequential

INPUT_STAGE = "input"
"""The name under which :meth:`SparseEncoder.encode` hands the input voxels (before the stem) to ``after_stage``."""


@MODELS.register_module()
class SparseEncoder(nn.Module):
    """Sparse 3D encoder of SECOND: a submanifold stem, stages that halve the grid, a z-collapsing conv.

    Args:
        in_channels: voxel feature channels (4 for the mean VFE).
        sparse_shape: voxel grid ``(z, y, x)``, e.g. ``(41, 1600, 1408)`` for KITTI at 0.05 x 0.05 x 0.1 m.
        base_channels: channels of the stem.
        output_channels: channels of the last conv; the BEV map has ``output_channels * D_out`` channels.
        encoder_channels: per stage, the channels of each block; every stage after the first starts
            with a stride-2 SparseConv3d, the other blocks are SubMConv3d.
        encoder_paddings: the padding of each block (matters for the strided ones).
        norm_cfg: normalisation config, default ``dict(type='BN1d', eps=1e-3, momentum=0.01)``.

    Shapes: ``forward(voxel_features [M, C_in], coors [M, 4] (b, z, y, x) int32, batch_size)``
    -> BEV features ``[B, out_channels, H_out, W_out]``.
    """

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        base_channels: int = 16,
        output_channels: int = 128,
        encoder_channels: Sequence[Sequence[int]] = ((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
        encoder_paddings: Sequence[Sequence] = ((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)),
        norm_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        if len(encoder_channels) != len(encoder_paddings) or any(
            len(c) != len(p) for c, p in zip(encoder_channels, encoder_paddings)
        ):
            raise ValueError(
                f"encoder_channels {encoder_channels} and encoder_paddings {encoder_paddings} must have the same shape"
            )
        norm_cfg = dict(type="BN1d", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.in_channels = in_channels
        self.sparse_shape = tuple(sparse_shape)
        self.conv_input = make_sparse_convmodule(in_channels, base_channels, 3, "subm1", norm_cfg, padding=1)
        stages, channels = [], base_channels
        for i, (stage_channels, stage_paddings) in enumerate(zip(encoder_channels, encoder_paddings)):
            blocks = []
            for j, (out_channels, padding) in enumerate(zip(stage_channels, stage_paddings)):
                strided = i != 0 and j == 0
                blocks.append(
                    make_sparse_convmodule(
                        channels,
                        out_channels,
                        3,
                        f"spconv{i + 1}" if strided else f"subm{i + 1}",
                        norm_cfg,
                        stride=2 if strided else 1,
                        padding=padding,
                        conv_type="SparseConv3d" if strided else "SubMConv3d",
                    )
                )
                channels = out_channels
            stages.append((f"encoder_layer{i + 1}", SparseSequential(*blocks)))
        self.encoder_layers = SparseSequential(OrderedDict(stages))  # mmdet3d's state-dict names
        self.conv_out = make_sparse_convmodule(
            channels,
            output_channels,
            (3, 1, 1),
            "spconv_down2",
            norm_cfg,
            stride=(2, 1, 1),
            padding=0,
            conv_type="SparseConv3d",
        )
        self.out_spatial_shape = self._output_shape()
        self.out_channels = output_channels * self.out_spatial_shape[0]

    def _output_shape(self) -> tuple[int, ...]:
        shape = self.sparse_shape
        for module in self.modules():
            if isinstance(module, SparseConvolution):
                shape = module.geometry.output_shape(shape)
        return shape

    # The sparse tensor class the input is wrapped in; benchmarks swap in spconv's twin class.
    sparse_tensor_type = SparseTensor

    def encode(
        self,
        voxel_features: torch.Tensor,
        coors: torch.Tensor,
        batch_size: int,
        after_stage: Callable[[str, SparseTensor], SparseTensor] | None = None,
    ) -> SparseTensor:
        """The sparse output of ``conv_out`` (``spatial_shape = out_spatial_shape``, ``output_channels`` features).

        ``after_stage(name, x)``, when given, is called on the voxels before the stem (name :data:`INPUT_STAGE`),
        after the stem (``conv_input``) and after each encoder stage (``encoder_layer1`` ...): :meth:`drop_sites`
        in order. It may return a tensor with fewer sites (Ada3D drops voxel columns there) and the network goes on
        with what it returns.
        """
        x = self.sparse_tensor_type(voxel_features, coors, self.sparse_shape, batch_size)
        if after_stage is not None:
            x = after_stage(INPUT_STAGE, x)
        for name, module in self._named_stages():
            x = module(x)
            if after_stage is not None:
                x = after_stage(name, x)
        return self.conv_out(x)

    def _named_stages(self) -> list[tuple[str, nn.Module]]:
        """The stem and the encoder stages, in order, by the names ``encode`` hands to ``after_stage``."""
        return [("conv_input", self.conv_input), *self.encoder_layers.named_children()]

    def drop_sites(self) -> dict[str, int]:
        """The names ``encode`` hands to ``after_stage``, in network order, with the channels of the tensor each
        sees: the voxel features' (:data:`INPUT_STAGE`), then the output channels of ``conv_input`` and of each
        encoder stage (its last convolution's)."""
        channels = {INPUT_STAGE: self.in_channels}
        for name, module in self._named_stages():
            convs = [m for m in module.modules() if isinstance(m, SparseConvolution)]
            channels[name] = convs[-1].out_channels
        return channels

    def forward(self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int) -> torch.Tensor:
        dense = self.encode(voxel_features, coors, batch_size).dense()  # [B, C, D, H, W]
        batch, channels, depth, height, width = dense.shape
        return dense.view(batch, channels * depth, height, width)
