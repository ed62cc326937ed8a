"""Greedy BEV NMS against a brute-force loop over the exact reference IoU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ada3d.ops.nms import multiclass_nms_bev, nms_bev
from tests.ada3d.ops.test_iou3d import random_boxes, reference_bev_iou


def brute_force_nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> list[int]:
    remaining = sorted(range(len(boxes)), key=lambda i: -scores[i].item())
    kept = []
    while remaining:
        best = remaining.pop(0)
        kept.append(best)
        remaining = [i for i in remaining if reference_bev_iou(boxes[best].tolist(), boxes[i].tolist()) <= threshold]
    return kept


@pytest.mark.parametrize("threshold", [0.01, 0.3, 0.7])
def test_matches_brute_force(threshold):
    generator = np.random.default_rng(3)
    boxes = random_boxes(generator, 60, 4.0)
    scores = torch.from_numpy(generator.permutation(60) / 60.0)  # distinct scores: one right answer
    kept = nms_bev(boxes, scores, threshold)
    assert kept.tolist() == brute_force_nms(boxes, scores, threshold)
    assert 1 < len(kept) < 60


def test_rotation_matters_unless_axis_aligned():
    # a car and the same car turned 90 degrees about its centre: rotated IoU 0.25, axis-aligned IoU 1
    boxes = torch.tensor([[0.0, 0, 0, 4, 1, 1.5, 0], [0.0, 0, 0, 4, 1, 1.5, math.pi / 2]])
    scores = torch.tensor([0.9, 0.8])
    assert nms_bev(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms_bev(boxes, scores, 0.5, rotated=False).tolist() == [0]


def test_empty_input_and_bad_shapes():
    assert nms_bev(torch.zeros((0, 7)), torch.zeros(0), 0.1).shape == (0,)
    with pytest.raises(ValueError, match="scores \\[N\\]"):
        nms_bev(torch.zeros((3, 7)), torch.zeros(2), 0.1)


def test_multiclass_suppresses_within_a_class_only_and_caps_the_count():
    boxes = torch.tensor([[0.0, 0, 0, 4, 2, 1.5, 0], [0.2, 0, 0, 4, 2, 1.5, 0], [20.0, 0, 0, 4, 2, 1.5, 0]])
    scores = torch.tensor([[0.9, 0.05], [0.8, 0.6], [0.3, 0.02]])
    result = multiclass_nms_bev(boxes, scores, score_threshold=0.1, iou_threshold=0.1)
    # class 0: box 1 overlaps box 0 and goes; class 1: only box 1 passes the score threshold
    assert result.indices.tolist() == [0, 1, 2]
    assert result.labels.tolist() == [0, 1, 0]
    torch.testing.assert_close(result.scores, torch.tensor([0.9, 0.6, 0.3]))
    capped = multiclass_nms_bev(boxes, scores, score_threshold=0.1, iou_threshold=0.1, max_num=2)
    assert capped.indices.tolist() == [0, 1]
