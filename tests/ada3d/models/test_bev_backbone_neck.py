"""SECOND backbone and SECONDFPN: shapes, strides, mmdet3d parameter names, resampling choices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ada3d.registry import MODELS


def test_second_backbone_kitti_shapes_and_names():
    backbone = MODELS.build(dict(type="SECOND", in_channels=32, layer_nums=[2, 1], layer_strides=[1, 2],
                                 out_channels=[16, 24]))
    outputs = backbone(torch.randn(2, 32, 20, 18))
    assert [tuple(x.shape) for x in outputs] == [(2, 16, 20, 18), (2, 24, 10, 9)]
    assert backbone.out_channels == [16, 24] and backbone.strides == [1, 2]
    state = backbone.state_dict()
    assert state["blocks.0.0.weight"].shape == (16, 32, 3, 3)  # stage 0, first conv
    assert state["blocks.0.6.weight"].shape == (16, 16, 3, 3)  # stage 0, third conv (2 repeats)
    assert state["blocks.1.1.running_var"].shape == (24,)
    bn = backbone.blocks[0][1]
    assert isinstance(bn, nn.BatchNorm2d) and bn.eps == 1e-3 and bn.momentum == 0.01


def test_second_fpn_upsamples_downsamples_and_concatenates():
    neck = MODELS.build(dict(type="SECONDFPN", in_channels=[16, 24, 8], out_channels=[4, 4, 4],
                             upsample_strides=[1, 2, 0.5]))
    assert isinstance(neck.deblocks[0][0], nn.ConvTranspose2d) and isinstance(neck.deblocks[2][0], nn.Conv2d)
    (out,) = neck([torch.randn(2, 16, 20, 18), torch.randn(2, 24, 10, 9), torch.randn(2, 8, 40, 36)])
    assert out.shape == (2, 12, 20, 18) and neck.out_channels == [12]
    assert neck.state_dict()["deblocks.1.0.weight"].shape == (24, 4, 2, 2)


def test_second_fpn_rejects_mismatched_inputs():
    neck = MODELS.build(dict(type="SECONDFPN", in_channels=[16, 24], out_channels=[4, 4], upsample_strides=[1, 1]))
    with pytest.raises(ValueError, match="different sizes"):
        neck([torch.randn(1, 16, 20, 18), torch.randn(1, 24, 10, 9)])
    with pytest.raises(ValueError, match="one entry per input map"):
        MODELS.build(dict(type="SECONDFPN", in_channels=[16], out_channels=[4, 4], upsample_strides=[1, 2]))
