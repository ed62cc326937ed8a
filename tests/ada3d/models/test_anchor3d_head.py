"""Anchor3DHead: targets, per-class assignment, loss wiring and decoding on hand-made cases."""

from __future__ import annotations

import math

import pytest
import torch
from mmengine.structures import InstanceData

from ada3d.models.heads import Anchor3DHead, AnchorHeadOutputs
from ada3d.registry import MODELS

CAR_ASSIGNER = dict(type="Max3DIoUAssigner", pos_iou_thr=0.6, neg_iou_thr=0.45, min_pos_iou=0.45)
SMALL_ASSIGNER = dict(type="Max3DIoUAssigner", pos_iou_thr=0.35, neg_iou_thr=0.2, min_pos_iou=0.2)
# a 7.6 m x 8 m patch: 20 x 9 cells 0.4 m x 1 m apart
CAR_ANCHORS = dict(type="Anchor3DRangeGenerator", ranges=[[0, -4, -1.78, 7.6, 4, -1.78]],
                   sizes=[[3.9, 1.6, 1.56]], rotations=[0, math.pi / 2], reshape_out=False)
TEST_CFG = dict(use_rotate_nms=True, nms_thr=0.01, score_thr=0.1, min_bbox_size=0, nms_pre=100, max_num=50)


def car_head(**kwargs) -> Anchor3DHead:
    return MODELS.build(dict(type="Anchor3DHead", num_classes=1, in_channels=8, anchor_generator=CAR_ANCHORS,
                             train_cfg=dict(assigner=CAR_ASSIGNER), test_cfg=TEST_CFG, **kwargs))


def instances(boxes: list[list[float]], labels: list[int]) -> InstanceData:
    return InstanceData(bboxes_3d=torch.tensor(boxes).reshape(-1, 7), labels_3d=torch.tensor(labels, dtype=torch.long))


def test_targets_of_one_car_decode_back_to_it():
    head = car_head()
    anchors = head.anchors([(9, 20)], torch.device("cpu"))
    assert anchors.shape == (180, 1, 2, 7)
    gt_box = [2.0, 0.0, -1.7, 4.2, 1.7, 1.5, math.pi - 0.1]  # facing backwards: direction bin 1
    targets = head.get_targets(anchors, [instances([gt_box], [0])])
    positive = targets.positive[0]
    assert targets.num_positives == int(positive.sum()) >= 1
    cell = 4 * 20 + 5  # the anchor at x = 2.0, y = 0
    assert positive[cell, 0, 0] and not positive[cell, 0, 1]  # the 0-yaw anchor, not the 90-degree one
    assert (targets.labels[0][positive] == 0).all() and (targets.labels[0][~positive] == 1).all()
    decoded = head.bbox_coder.decode(anchors[positive], targets.bbox_targets[0][positive])
    torch.testing.assert_close(decoded, torch.tensor([gt_box]).expand_as(decoded))
    assert (targets.dir_targets[0][positive] == 1).all()
    # far anchors are negatives (weight 1); those between the thresholds are ignored (weight 0)
    assert targets.label_weights[0, 0, 0, 0] == 1
    assert ((targets.label_weights[0] == 0) & ~positive).any()


def test_empty_sample_is_all_negative_and_counts_one():
    head = car_head()
    anchors = head.anchors([(9, 20)], torch.device("cpu"))
    targets = head.get_targets(anchors, [instances([], [])])
    assert not targets.positive.any() and (targets.label_weights == 1).all() and targets.num_positives == 1


def kitti_three_class_head(assign_per_class: bool) -> Anchor3DHead:
    ranges = [[0, -4, -0.6, 7.6, 4, -0.6]] * 2 + [[0, -4, -1.78, 7.6, 4, -1.78]]
    anchors = dict(type="Anchor3DRangeGenerator", ranges=ranges,
                   sizes=[[0.8, 0.6, 1.73], [1.76, 0.6, 1.73], [3.9, 1.6, 1.56]], rotations=[0, 1.57],
                   reshape_out=False)
    return MODELS.build(dict(type="Anchor3DHead", num_classes=3, in_channels=8, anchor_generator=anchors,
                             assign_per_class=assign_per_class,
                             train_cfg=dict(assigner=[SMALL_ASSIGNER, SMALL_ASSIGNER, CAR_ASSIGNER])))


@pytest.mark.parametrize("assign_per_class", [False, True])
def test_pedestrian_claims_cyclist_anchors_unless_assigned_per_class(assign_per_class):
    head = kitti_three_class_head(assign_per_class)
    anchors = head.anchors([(9, 20)], torch.device("cpu"))
    pedestrian = instances([[2.0, 0.0, -1.6, 0.8, 0.6, 1.73, 0.0]], [0])  # IoU 0.45 with a cyclist anchor
    targets = head.get_targets(anchors, [pedestrian])
    positive_sizes = targets.positive[0].nonzero()[:, 1].unique().tolist()
    assert positive_sizes == ([0] if assign_per_class else [0, 1])
    assert (targets.labels[0][targets.positive[0]] == 0).all()


def test_assigners_must_match_anchor_sizes():
    with pytest.raises(ValueError, match="2 assigners for 3 anchor sizes"):
        MODELS.build(dict(type="Anchor3DHead", num_classes=3, in_channels=8,
                          anchor_generator=dict(CAR_ANCHORS, sizes=[[1, 1, 1]] * 3),
                          train_cfg=dict(assigner=[CAR_ASSIGNER] * 2)))
    with pytest.raises(ValueError, match="feat_channels"):
        car_head(feat_channels=16)
    with pytest.raises(ValueError, match="needs train_cfg"):
        MODELS.build(dict(type="Anchor3DHead", num_classes=1, in_channels=8, anchor_generator=CAR_ANCHORS)).loss(
            [torch.zeros(1, 8, 9, 20)], [])


def test_loss_keys_gradients_and_sin_difference():
    torch.manual_seed(0)
    head = car_head()
    features = [torch.randn(2, 8, 9, 20, requires_grad=True)]
    gt = [instances([[2.0, 0.0, -1.7, 4.2, 1.7, 1.5, 0.2]], [0]), instances([], [])]
    losses = head.loss_by_feat(head(features), gt)
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_dir"}
    assert all(torch.isfinite(value) and value > 0 for value in losses.values())
    sum(losses.values()).backward()
    assert features[0].grad.abs().sum() > 0
    without_direction = car_head(use_direction_classifier=False)
    assert without_direction.conv_dir_cls is None and without_direction.loss_dir is None
    assert set(without_direction.loss_by_feat(without_direction(features), gt)) == {"loss_cls", "loss_bbox"}
    # the yaw columns differ by sin(yaw_pred - yaw_target): a half turn costs nothing (the direction
    # classifier tells them apart)
    yaw_pred, yaw_target = torch.tensor([0.3, 0.3, -2.0]), torch.tensor([0.3 + math.pi, 1.0, 2.5])
    boxes_pred = torch.cat([torch.zeros(3, 6), yaw_pred[:, None]], 1)
    pred, target = head.add_sin_difference(boxes_pred, torch.cat([torch.zeros(3, 6), yaw_target[:, None]], 1))
    torch.testing.assert_close(pred[:, :6], boxes_pred[:, :6])
    torch.testing.assert_close(pred[:, 6] - target[:, 6], torch.sin(yaw_pred - yaw_target))
    assert abs(pred[0, 6] - target[0, 6]) < 1e-6


def confident_outputs(head: Anchor3DHead, cells: list[tuple[int, int, int, int]], boxes: torch.Tensor, bins: list[int]):
    """Outputs with logit +8 for ``(cell, size, rotation, class)`` entries and deltas that decode to ``boxes``."""
    anchors = head.anchors([(9, 20)], torch.device("cpu"))
    num_classes, code = head.num_classes, head.box_code_size
    cls = torch.full((1, 9 * 20, 1, 2, num_classes), -8.0)
    reg = torch.zeros((1, 9 * 20, 1, 2, code))
    direction = torch.zeros((1, 9 * 20, 1, 2, 2))
    for (cell, size, rotation, label), box, dir_bin in zip(cells, boxes, bins):
        cls[0, cell, size, rotation, label] = 8.0
        reg[0, cell, size, rotation] = head.bbox_coder.encode(anchors[cell, size, rotation], box)
        direction[0, cell, size, rotation, dir_bin] = 5.0

    def to_map(tensor):
        return tensor.reshape(1, 9, 20, -1).permute(0, 3, 1, 2)

    return AnchorHeadOutputs([to_map(cls)], [to_map(reg)], [to_map(direction)])


def test_decoding_recovers_boxes_and_their_heading():
    head = car_head()
    boxes = torch.tensor([[2.1, 0.1, -1.7, 4.0, 1.7, 1.5, 3.0],  # from a 90-degree anchor, facing backwards
                          [6.0, -3.0, -1.7, 3.8, 1.6, 1.5, -0.2]])
    outputs = confident_outputs(head, [(4 * 20 + 5, 0, 1, 0), (1 * 20 + 15, 0, 0, 0)], boxes, [1, 0])
    (result,) = head.predict_by_feat(outputs)
    assert result.labels_3d.tolist() == [0, 0]
    torch.testing.assert_close(result.scores_3d, torch.full((2,), torch.sigmoid(torch.tensor(8.0)).item()))
    order = result.bboxes_3d[:, 0].argsort()
    torch.testing.assert_close(result.bboxes_3d[order], boxes, atol=1e-5, rtol=0)
    # the wrong direction bin turns the box by half a turn
    flipped = confident_outputs(head, [(4 * 20 + 5, 0, 1, 0)], boxes[:1], [0])
    (result,) = head.predict_by_feat(flipped)
    assert result.bboxes_3d[0, 6].item() == pytest.approx(3.0 - math.pi, abs=1e-5)


def test_nms_score_threshold_and_caps():
    head = car_head()
    boxes = torch.tensor([[2.1, 0.1, -1.7, 4.0, 1.7, 1.5, 0.0], [2.3, 0.1, -1.7, 4.0, 1.7, 1.5, 0.0],
                          [6.0, 3.0, -1.7, 4.0, 1.7, 1.5, 0.0]])
    outputs = confident_outputs(head, [(4 * 20 + 5, 0, 0, 0), (4 * 20 + 6, 0, 0, 0), (7 * 20 + 15, 0, 0, 0)], boxes,
                                [0, 0, 0])
    outputs.cls_scores[0][0, 0, 4, 6] = 7.0  # the second car is less sure and overlaps the first
    (result,) = head.predict_by_feat(outputs)
    assert len(result.bboxes_3d) == 2
    torch.testing.assert_close(result.bboxes_3d[:, 0].sort().values, torch.tensor([2.1, 6.0]))
    (capped,) = head.predict_by_feat(outputs, dict(TEST_CFG, max_num=1))
    assert len(capped.bboxes_3d) == 1
    (small_removed,) = head.predict_by_feat(outputs, dict(TEST_CFG, min_bbox_size=5.0))
    assert len(small_removed.bboxes_3d) == 0


@pytest.mark.parametrize("direction", [True, False])
def test_stacked_branches_equal_the_separate_convs(direction):
    """forward runs the 1x1 branches as one conv of their stacked weights: the same maps as calling each conv."""
    torch.manual_seed(0)
    head = car_head(use_direction_classifier=direction)
    for conv in head._branches():
        torch.nn.init.normal_(conv.bias)
    features = [torch.randn(2, 8, 9, 20, dtype=torch.float64)]
    head = head.double()
    outputs = head(features)
    separate = [head.conv_cls, head.conv_reg] + ([head.conv_dir_cls] if direction else [])
    fused = [outputs.cls_scores, outputs.bbox_preds] + ([outputs.dir_cls_preds] if direction else [])
    assert (outputs.dir_cls_preds is not None) == direction
    for conv, maps in zip(separate, fused):
        torch.testing.assert_close(maps[0], conv(features[0]), rtol=1e-12, atol=1e-12)
