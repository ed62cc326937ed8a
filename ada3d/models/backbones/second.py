"""SECOND's dense BEV backbone: stages of 3x3 convs, each starting with a (possibly strided) conv."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ada3d.models.layers.norm import build_norm_layer
from ada3d.registry import MODELS


@MODELS.register_module()
class SECOND(nn.Module):
    """Stages of ``Conv3x3(stride) -> BN -> ReLU`` followed by ``layer_nums[i]`` stride-1 repeats.

    Args:
        in_channels: channels of the BEV map (the sparse encoder's ``out_channels``).
        out_channels: channels of each stage.
        layer_nums: extra stride-1 conv blocks per stage.
        layer_strides: stride of each stage's first conv.
        norm_cfg: default ``dict(type='BN', eps=1e-3, momentum=0.01)``.

    Shapes: ``[B, in_channels, H, W]`` -> tuple of ``[B, out_channels[i], H / s_i, W / s_i]``, with
    ``s_i = strides[i]`` the product of the strides so far. Parameter names follow mmdet3d
    (``blocks.{stage}.{3 * block}.weight``), so its checkpoints load.
    """

    def __init__(
        self,
        in_channels: int = 128,
        out_channels: Sequence[int] = (128, 128, 256),
        layer_nums: Sequence[int] = (3, 5, 5),
        layer_strides: Sequence[int] = (2, 2, 2),
        norm_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        norm_cfg = dict(type="BN", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.in_channels = in_channels
        self.out_channels = list(out_channels)
        self.strides = stage_strides(out_channels, layer_nums, layer_strides)
        blocks, channels = [], in_channels
        for stage_channels, num_layers, stride in zip(out_channels, layer_nums, layer_strides):
            layers = []
            for k in range(num_layers + 1):
                conv_in = channels if k == 0 else stage_channels
                layers += [
                    nn.Conv2d(conv_in, stage_channels, 3, stride=stride if k == 0 else 1, padding=1, bias=False),
                    build_norm_layer(norm_cfg, stage_channels),
                    nn.ReLU(inplace=True),
                ]
            blocks.append(nn.Sequential(*layers))
            channels = stage_channels
        self.blocks = nn.ModuleList(blocks)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return tuple(outputs)


def stage_strides(out_channels: Sequence[int], layer_nums: Sequence[int], layer_strides: Sequence[int]) -> list[int]:
    """The output stride of each stage (product of the strides so far), after checking one entry per stage."""
    if not len(out_channels) == len(layer_nums) == len(layer_strides):
        raise ValueError(
            f"out_channels {out_channels}, layer_nums {layer_nums} and layer_strides {layer_strides} "
            "need one entry per stage"
        )
    return [math.prod(layer_strides[: i + 1]) for i in range(len(layer_strides))]
