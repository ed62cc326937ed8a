"""Losses against torch's own functions and the focal-loss formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ada3d.registry import MODELS


def test_focal_loss_matches_the_formula_with_background_labels():
    torch.manual_seed(0)
    logits = torch.randn(6, 3, dtype=torch.float64)
    labels = torch.tensor([0, 2, 3, 3, 1, 3])  # 3 = background: all-zero targets
    weights = torch.tensor([1.0, 1, 1, 0, 1, 1], dtype=torch.float64)
    loss = MODELS.build(dict(type="FocalLoss", gamma=2.0, alpha=0.25, loss_weight=1.5))
    targets = torch.zeros(6, 3, dtype=torch.float64)
    targets[[0, 1, 4], [0, 2, 1]] = 1
    p = logits.sigmoid()
    expected = -(targets * 0.25 * (1 - p) ** 2 * torch.log(p) + (1 - targets) * 0.75 * p**2 * torch.log(1 - p))
    expected = 1.5 * (expected * weights[:, None]).sum() / 3
    torch.testing.assert_close(loss(logits, labels, weights, avg_factor=3), expected)
    assert loss(logits, labels, reduction_override="none").shape == (6, 3)


def test_smooth_l1_matches_torch_and_respects_weights():
    torch.manual_seed(1)
    pred, target = torch.randn(10, 7), torch.randn(10, 7)
    weight = torch.rand(10, 7)
    loss = MODELS.build(dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=2.0))
    expected = 2.0 * (F.smooth_l1_loss(pred, target, beta=1.0 / 9.0, reduction="none") * weight).sum() / 4
    torch.testing.assert_close(loss(pred, target, weight, avg_factor=4), expected)
    with pytest.raises(ValueError, match="same shape"):
        loss(pred, target[:, :6])


def test_cross_entropy_softmax_and_sigmoid():
    torch.manual_seed(2)
    logits, labels = torch.randn(8, 2), torch.randint(0, 2, (8,))
    softmax = MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=0.2))
    torch.testing.assert_close(softmax(logits, labels, torch.ones(8), avg_factor=4),
                               0.2 * F.cross_entropy(logits, labels, reduction="sum") / 4)
    sigmoid = MODELS.build(dict(type="CrossEntropyLoss", use_sigmoid=True))
    one_hot = F.one_hot(labels, 2).float()
    torch.testing.assert_close(sigmoid(logits, labels), F.binary_cross_entropy_with_logits(logits, one_hot))


def test_empty_positives_give_a_zero_loss_with_a_graph():
    pred = torch.zeros((0, 7), requires_grad=True)
    loss = MODELS.build(dict(type="SmoothL1Loss"))(pred, torch.zeros((0, 7)), avg_factor=1)
    assert loss.item() == 0 and loss.requires_grad


def test_bad_options_raise():
    with pytest.raises(ValueError, match="use_sigmoid must be True"):
        MODELS.build(dict(type="FocalLoss", use_sigmoid=False))
    with pytest.raises(ValueError, match="reduction must be one of"):
        MODELS.build(dict(type="SmoothL1Loss", reduction="average"))
    with pytest.raises(ValueError, match="avg_factor only applies"):
        MODELS.build(dict(type="SmoothL1Loss", reduction="sum"))(torch.ones(2), torch.zeros(2), avg_factor=2)
