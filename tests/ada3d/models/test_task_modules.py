"""Anchor generator, box coder, IoU calculators, assigner and sampler on hand-checked cases."""

from __future__ import annotations

import math

import pytest
import torch

from ada3d.models.task_modules import (
    AlignedAnchor3DRangeGenerator,
    Anchor3DRangeGenerator,
    DeltaXYZWLHRBBoxCoder,
    Max3DIoUAssigner,
    PseudoSampler,
)
from ada3d.registry import TASK_UTILS

KITTI_RANGES = [[0, -40.0, -0.6, 70.4, 40.0, -0.6], [0, -40.0, -0.6, 70.4, 40.0, -0.6],
                [0, -40.0, -1.78, 70.4, 40.0, -1.78]]
KITTI_SIZES = [[0.8, 0.6, 1.73], [1.76, 0.6, 1.73], [3.9, 1.6, 1.56]]


def kitti_generator(reshape_out: bool = False) -> Anchor3DRangeGenerator:
    return TASK_UTILS.build(dict(type="Anchor3DRangeGenerator", ranges=KITTI_RANGES, sizes=KITTI_SIZES,
                                 rotations=[0, 1.57], reshape_out=reshape_out))


def test_kitti_anchors_layout_and_positions():
    generator = kitti_generator()
    assert generator.num_base_anchors == 6 and generator.num_levels == 1
    (anchors,) = generator.grid_anchors([(200, 176)])
    assert anchors.shape == (1, 200, 176, 3, 2, 7)
    # corners of the range, every size and rotation at each cell
    torch.testing.assert_close(anchors[0, 0, 0, 2, 1], torch.tensor([0, -40, -1.78, 3.9, 1.6, 1.56, 1.57]))
    torch.testing.assert_close(anchors[0, -1, -1, 0, 0], torch.tensor([70.4, 40, -0.6, 0.8, 0.6, 1.73, 0]))
    # x varies along W, y along H, with (range / (cells - 1)) spacing
    assert anchors[0, 0, 1, 0, 0, 0].item() == pytest.approx(70.4 / 175)
    assert anchors[0, 1, 0, 0, 0, 1].item() == pytest.approx(-40 + 80 / 199)
    flat = kitti_generator(reshape_out=True).grid_anchors([(200, 176)])[0]
    assert flat.shape == (200 * 176 * 6, 7)
    torch.testing.assert_close(flat[:6], anchors[0, 0, 0].reshape(6, 7))  # cell-major, then size, then rotation


def test_aligned_anchors_sit_at_cell_centres_and_custom_values_add_columns():
    generator = AlignedAnchor3DRangeGenerator(ranges=[[0, -40, -1.78, 70.4, 40, -1.78]], custom_values=[0, 0],
                                              reshape_out=False)
    anchors = generator.single_level_grid_anchors((200, 176))
    assert anchors.shape == (1, 200, 176, 1, 2, 9)
    assert anchors[0, 0, 0, 0, 0, 0].item() == pytest.approx(0.2)
    assert anchors[0, -1, -1, 0, 0, 1].item() == pytest.approx(39.8)
    assert anchors[..., 7:].abs().sum() == 0


def test_generator_rejects_bad_configs():
    with pytest.raises(ValueError, match="one range per size"):
        Anchor3DRangeGenerator(ranges=KITTI_RANGES[:2], sizes=KITTI_SIZES)
    with pytest.raises(ValueError, match="2 feature maps"):
        kitti_generator().grid_anchors([(4, 4), (2, 2)])


@pytest.mark.parametrize("code_size", [7, 9])
def test_box_coder_round_trip(code_size):
    generator = torch.Generator().manual_seed(0)
    anchors = torch.cat([torch.randn(100, 3, generator=generator) * 10, torch.rand(100, 3, generator=generator) + 0.5,
                         torch.randn(100, code_size - 6, generator=generator)], 1).double()
    boxes = anchors + torch.randn(100, code_size, generator=generator).double() * 0.3
    boxes[:, 3:6] = anchors[:, 3:6] * torch.exp(torch.randn(100, 3, generator=generator).double() * 0.2)
    coder = DeltaXYZWLHRBBoxCoder(code_size)
    deltas = coder.encode(anchors, boxes)
    torch.testing.assert_close(coder.decode(anchors, deltas), boxes)
    torch.testing.assert_close(coder.encode(anchors, anchors), torch.zeros_like(anchors))


def test_box_coder_deltas_by_hand():
    anchor = torch.tensor([[10.0, 2.0, -1.78, 3.0, 4.0, 2.0, 0.0]])  # diagonal 5, bottom -1.78, centre -0.78
    box = torch.tensor([[11.0, 0.0, -1.28, 6.0, 4.0, 2.0, 0.5]])  # centre z -0.28
    deltas = DeltaXYZWLHRBBoxCoder().encode(anchor, box)
    torch.testing.assert_close(deltas, torch.tensor([[0.2, -0.4, 0.25, math.log(2), 0.0, 0.0, 0.5]]))
    with pytest.raises(ValueError, match="7 columns"):
        DeltaXYZWLHRBBoxCoder().encode(anchor, torch.zeros(1, 9))


def car(x: float, y: float, yaw: float = 0.0) -> list[float]:
    return [x, y, -1.78, 3.9, 1.6, 1.56, yaw]


def test_car_at_45_degrees_needs_the_nearest_iou():
    """Why SECOND assigns with the snapped IoU: rotated IoU leaves a diagonal car without a positive anchor."""
    anchors = torch.tensor([car(0, 0, 0), car(0, 0, 1.57)])
    diagonal_car = torch.tensor([car(0, 0, math.pi / 4)])
    rotated = TASK_UTILS.build(dict(type="BboxOverlapsRotatedBEV"))(diagonal_car, anchors)
    assert rotated.max() < 0.45  # below the car's min_pos_iou
    nearest = TASK_UTILS.build(dict(type="BboxOverlapsNearest3D"))(diagonal_car, anchors)
    assert nearest.max() == pytest.approx(1.0)


def test_assigner_thresholds_and_low_quality_matches():
    anchors = torch.tensor([
        car(0, 0),       # IoU 1 with gt 0 -> positive
        car(1.0, 0),     # IoU 2.9 / 4.9 = 0.59 with gt 0 -> ignored (between 0.45 and 0.6)
        car(3.0, 0),     # IoU 0.9 / 6.9 = 0.13 -> negative
        car(30, 0.5),    # gt 1 at (30, 0) is best matched here: IoU 1.1 / 2.1 = 0.52 -> low-quality positive
        car(50, 0),      # far from everything -> negative
    ])
    gt_boxes = torch.tensor([car(0, 0), car(30, 0)])
    assigner = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.45, min_pos_iou=0.45)
    result = assigner.assign(anchors, gt_boxes, torch.tensor([2, 2]))
    assert result.gt_inds.tolist() == [1, -1, 0, 2, 0]
    assert result.labels.tolist() == [2, -1, -1, 2, -1]
    torch.testing.assert_close(result.max_overlaps[:4], torch.tensor([1.0, 2.9 / 4.9, 0.9 / 6.9, 1.1 / 2.1]))
    strict = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.45, min_pos_iou=0.6)
    assert strict.assign(anchors, gt_boxes).gt_inds.tolist() == [1, -1, 0, -1, 0]  # 0.52 < min_pos_iou


def test_assigner_ties_range_and_empty_ground_truth():
    anchors = torch.tensor([car(-1.0, 0), car(1.0, 0), car(20, 0)])
    gt_boxes = torch.tensor([car(0, 0)])  # equally between the first two anchors: IoU 4.64 / 7.84 = 0.59
    all_ties = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.3, min_pos_iou=0.3)
    assert all_ties.assign(anchors, gt_boxes).gt_inds.tolist() == [1, 1, 0]
    first_only = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.3, min_pos_iou=0.3, gt_max_assign_all=False)
    assert first_only.assign(anchors, gt_boxes).gt_inds.tolist() == [1, -1, 0]
    band = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=(0.1, 0.6), match_low_quality=False)
    assert band.assign(anchors, gt_boxes).gt_inds.tolist() == [0, 0, -1]  # IoU 0 is outside [0.1, 0.6)
    empty = all_ties.assign(anchors, torch.zeros((0, 7)), torch.zeros(0, dtype=torch.long))
    assert empty.gt_inds.tolist() == [0, 0, 0] and empty.labels.tolist() == [-1, -1, -1]


def test_assigner_config_errors():
    with pytest.raises(ValueError, match="ignore_iof_thr must be -1"):
        Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.45, ignore_iof_thr=0.5)
    with pytest.raises(ValueError, match="mode='iou' only"):
        TASK_UTILS.build(dict(type="BboxOverlapsNearest3D"))(torch.zeros(1, 7), torch.zeros(1, 7), mode="iof")


def test_pseudo_sampler_takes_every_assigned_anchor():
    anchors = torch.tensor([car(0, 0), car(1.0, 0), car(3.0, 0), car(30, 0.5), car(50, 0)])
    gt_boxes = torch.tensor([car(0, 0), car(30, 0)])
    result = Max3DIoUAssigner(pos_iou_thr=0.6, neg_iou_thr=0.45, min_pos_iou=0.45).assign(anchors, gt_boxes)
    sampling = PseudoSampler().sample(result, anchors, gt_boxes)
    assert sampling.pos_inds.tolist() == [0, 3] and sampling.neg_inds.tolist() == [2, 4]
    assert sampling.pos_assigned_gt_inds.tolist() == [0, 1]
    torch.testing.assert_close(sampling.pos_gt_bboxes, gt_boxes)
    torch.testing.assert_close(sampling.pos_bboxes, anchors[[0, 3]])
