"""SECOND's FPN: bring every backbone stage to one resolution and concatenate."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ada3d.models.layers.norm import build_norm_layer
from ada3d.registry import MODELS


@MODELS.register_module()
class SECONDFPN(nn.Module):
    """Per input map an up-sampling (transposed conv) or down-sampling (strided conv) block, then concat.

    Args:
        in_channels: channels of each backbone output.
        out_channels: channels of each branch after resampling.
        upsample_strides: per branch; ``s > 1`` a ``ConvTranspose2d(kernel s, stride s)``, ``s < 1`` a
            ``Conv2d(kernel 1/s, stride 1/s)``, ``s == 1`` a 1x1 transposed conv (mmdet3d's layout) or a
            1x1 conv with ``use_conv_for_no_stride``.
        norm_cfg: default ``dict(type='BN', eps=1e-3, momentum=0.01)``.
        use_conv_for_no_stride: see ``upsample_strides``.

    Shapes: a sequence of maps ``[B, in_channels[i], H_i, W_i]`` with ``H_i * upsample_strides[i]`` all
    equal -> a list holding one map ``[B, sum(out_channels), H, W]``; ``self.out_channels`` is
    ``[sum(out_channels)]``, the channels of each output map. Parameter names follow mmdet3d
    (``deblocks.{i}.0.weight``).
    """

    def __init__(
        self,
        in_channels: Sequence[int] = (128, 128, 256),
        out_channels: Sequence[int] = (256, 256, 256),
        upsample_strides: Sequence[float] = (1, 2, 4),
        norm_cfg: dict | None = None,
        use_conv_for_no_stride: bool = False,
    ) -> None:
        super().__init__()
        if not len(in_channels) == len(out_channels) == len(upsample_strides):
            raise ValueError(
                f"in_channels {in_channels}, out_channels {out_channels} and upsample_strides {upsample_strides} "
                "need one entry per input map"
            )
        norm_cfg = dict(type="BN", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.in_channels = list(in_channels)
        self.branch_channels = list(out_channels)
        self.upsample_strides = list(upsample_strides)
        self.out_channels = [sum(out_channels)]
        deblocks = []
        for branch_in, branch_out, stride in zip(in_channels, out_channels, upsample_strides):
            if stride > 1 or (stride == 1 and not use_conv_for_no_stride):
                resample = nn.ConvTranspose2d(branch_in, branch_out, int(stride), stride=int(stride), bias=False)
            else:
                factor = round(1 / stride)
                resample = nn.Conv2d(branch_in, branch_out, factor, stride=factor, bias=False)
            deblocks.append(nn.Sequential(resample, build_norm_layer(norm_cfg, branch_out), nn.ReLU(inplace=True)))
        self.deblocks = nn.ModuleList(deblocks)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(features) != len(self.deblocks):
            raise ValueError(f"SECONDFPN got {len(features)} maps, built for {len(self.deblocks)}")
        branches = [deblock(x) for deblock, x in zip(self.deblocks, features)]
        shapes = {tuple(branch.shape[-2:]) for branch in branches}
        if len(shapes) > 1:
            raise ValueError(f"SECONDFPN branches reach different sizes {sorted(shapes)}: check upsample_strides")
        return [torch.cat(branches, dim=1)]
