"""CenterPoint's residual sparse 3D encoder on sparse_ops, under OpenPCDet's name and parameter names."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ada3d.models.layers import build_norm_layer, make_sparse_convmodule
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConvolution, SparseModule, SparseSequential, SubMConv3d, apply_to_features


class SparseBasicBlock(SparseModule):
    """Residual block on fixed sites: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + x)``.

    Both convs are 3x3x3 submanifold convs with a bias, as in OpenPCDet and CenterPoint (so their
    checkpoints load), sharing ``indice_key`` (one kernel map per stage). The forward uses only what
    sparse_ops' ``SparseTensor`` and spconv's ``SparseConvTensor`` have in common (``features``,
    ``replace_feature``), so :func:`ada3d.benchmark.spconv_twin.to_spconv` can swap the convs.

    Shapes: ``[N, channels]`` features -> ``[N, channels]`` features on the same sites.
    """

    def __init__(self, channels: int, indice_key: str, norm_cfg: dict) -> None:
        super().__init__()
        self.conv1 = SubMConv3d(channels, channels, 3, bias=True, indice_key=indice_key)
        self.bn1 = build_norm_layer(norm_cfg, channels)
        self.conv2 = SubMConv3d(channels, channels, 3, bias=True, indice_key=indice_key)
        self.bn2 = build_norm_layer(norm_cfg, channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        out = self.conv1(x)
        out = out.replace_feature(self.relu(apply_to_features(self.bn1, out)))
        out = self.conv2(out)
        return out.replace_feature(self.relu(apply_to_features(self.bn2, out) + x.features))


@MODELS.register_module()
class VoxelResBackBone8x(nn.Module):
    """CenterPoint's sparse encoder: a submanifold stem, four residual stages, a z-collapsing conv.

    Stage ``i`` (``conv1`` .. ``conv4``) has ``channels[i]`` channels; stages 2-4 start with a
    stride-2 3x3x3 SparseConv3d (padding 1, stage 4 ``(0, 1, 1)``) + norm + ReLU; every stage then has
    two :class:`SparseBasicBlock`. ``conv_out`` is a ``(3, 1, 1)`` stride-``(2, 1, 1)`` SparseConv3d
    (padding 0) + norm + ReLU. Overall stride 8 in y and x. Parameter names follow OpenPCDet's
    ``VoxelResBackBone8x`` (``conv1.0.conv1.weight``, ``conv2.0.0.weight``, ...).

    Args:
        in_channels: voxel feature channels (5 for the mean VFE on nuScenes: x, y, z, intensity, time lag).
        sparse_shape: voxel grid ``(z, y, x)``, e.g. ``(41, 1440, 1440)`` for nuScenes at 0.075 x 0.075 x 0.2 m
            in ``[-54, -54, -5, 54, 54, 3]`` (one extra z layer, as OpenPCDet and mmdet3d add).
        channels: channels of the stem/stage 1 and of stages 2, 3, 4.
        output_channels: channels of ``conv_out``; the BEV map has ``output_channels * D_out`` channels.
        norm_cfg: normalisation config, default ``dict(type='BN1d', eps=1e-3, momentum=0.01)``.

    Shapes: ``forward(voxel_features [M, C_in], coors [M, 4] (b, z, y, x) int32, batch_size)``
    -> height-compressed BEV features ``[B, out_channels, H_out, W_out]`` (``[B, 256, 180, 180]`` on nuScenes).
    """

    # The sparse tensor class the input is wrapped in; spconv twins swap in spconv's class.
    sparse_tensor_type = SparseTensor

    def __init__(
        self,
        in_channels: int,
        sparse_shape: Sequence[int],
        channels: Sequence[int] = (16, 32, 64, 128),
        output_channels: int = 128,
        norm_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"channels must give the 4 stage widths, got {tuple(channels)}")
        norm_cfg = dict(type="BN1d", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.in_channels = in_channels
        self.sparse_shape = tuple(int(s) for s in sparse_shape)
        self.conv_input = make_sparse_convmodule(in_channels, channels[0], 3, "subm1", norm_cfg, padding=1)
        stage_paddings = (None, 1, 1, (0, 1, 1))  # stage 1 keeps the grid
        previous = channels[0]
        for stage, (width, padding) in enumerate(zip(channels, stage_paddings), start=1):
            layers = []
            if padding is not None:
                layers.append(
                    make_sparse_convmodule(
                        previous, width, 3, f"spconv{stage}", norm_cfg, 2, padding, conv_type="SparseConv3d"
                    )
                )
            layers += [SparseBasicBlock(width, f"res{stage}", norm_cfg) for _ in range(2)]
            self.add_module(f"conv{stage}", SparseSequential(*layers))
            previous = width
        self.conv_out = make_sparse_convmodule(
            previous, output_channels, (3, 1, 1), "spconv_down2", norm_cfg, (2, 1, 1), 0, conv_type="SparseConv3d"
        )
        self.out_spatial_shape = output_spatial_shape(self, self.sparse_shape)
        self.out_channels = output_channels * self.out_spatial_shape[0]

    def forward(self, voxel_features: torch.Tensor, coors: torch.Tensor, batch_size: int) -> torch.Tensor:
        x = self.sparse_tensor_type(voxel_features, coors, self.sparse_shape, batch_size)
        x = self.conv_input(x)
        for stage in (self.conv1, self.conv2, self.conv3, self.conv4):
            x = stage(x)
        dense = self.conv_out(x).dense()  # [B, C, D, H, W]
        batch, channels, depth, height, width = dense.shape
        return dense.view(batch, channels * depth, height, width)


def output_spatial_shape(network: nn.Module, sparse_shape: Sequence[int]) -> tuple[int, ...]:
    """The grid after every sparse convolution of ``network`` (in registration order) is applied to ``sparse_shape``."""
    shape = tuple(sparse_shape)
    for module in network.modules():
        if isinstance(module, SparseConvolution):
            shape = module.geometry.output_shape(shape)
    return shape
