"""The SECOND SparseEncoder: mmdet3d's shapes and parameter names, batch independence."""

from __future__ import annotations

import pytest
import torch

from ada3d.models.middle_encoders import SparseEncoder
from ada3d.registry import MODELS
from tests.sparse_ops.cases import random_sparse_tensor


def test_builds_from_config_with_mmdet3d_shapes_and_names():
    encoder = MODELS.build(dict(type="SparseEncoder", in_channels=4, sparse_shape=[41, 1600, 1408]))
    assert encoder.out_spatial_shape == (2, 200, 176) and encoder.out_channels == 256
    state = encoder.state_dict()
    assert state["conv_input.0.weight"].shape == (16, 3, 3, 3, 4)
    assert state["encoder_layers.encoder_layer2.0.0.weight"].shape == (32, 3, 3, 3, 16)
    assert state["encoder_layers.encoder_layer4.0.0.weight"].shape == (64, 3, 3, 3, 64)
    assert state["conv_out.0.weight"].shape == (128, 3, 1, 1, 64)
    assert state["conv_out.1.running_var"].shape == (128,)
    bn = encoder.conv_input[1]
    assert bn.eps == 1e-3 and bn.momentum == 0.01


def test_mismatched_channels_and_paddings_raise():
    with pytest.raises(ValueError, match="same shape"):
        SparseEncoder(4, (41, 64, 64), encoder_channels=((16,), (32, 32)), encoder_paddings=((1,), (1,)))


def test_batch_of_two_equals_each_sample_alone():
    torch.manual_seed(0)
    encoder = SparseEncoder(4, (41, 32, 24)).double().eval()
    samples = [random_sparse_tensor((41, 32, 24), 1, 4, density, seed) for density, seed in ((0.02, 1), (0.05, 2))]
    coors = torch.cat([s.indices + torch.tensor([b, 0, 0, 0], dtype=torch.int32) for b, s in enumerate(samples)])
    with torch.no_grad():
        batched = encoder(torch.cat([s.features for s in samples]), coors, 2)
        alone = [encoder(s.features, s.indices, 1) for s in samples]
    assert batched.shape == (2, encoder.out_channels, 4, 3)
    torch.testing.assert_close(batched, torch.cat(alone))


def test_empty_sample_in_batch_gives_zero_map():
    encoder = SparseEncoder(4, (41, 32, 24)).double().eval()
    x = random_sparse_tensor((41, 32, 24), 1, 4, 0.03, seed=3)
    with torch.no_grad():
        out = encoder(x.features, x.indices, 2)  # sample 1 has no voxels
    assert out[0].abs().sum() > 0 and out[1].abs().sum() == 0
