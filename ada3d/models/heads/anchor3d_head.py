"""The anchor-based 3D detection head of SECOND / PointPillars (mmdet3d's ``Anchor3DHead``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from mmengine.structures import InstanceData
from torch import nn

from ada3d.ops.nms import multiclass_nms_bev
from ada3d.registry import MODELS, TASK_UTILS
from ada3d.structures import Det3DDataSample, limit_period
from ada3d.structures.sparse_bev_map import SparseBevMap


def _pointwise_conv(x: torch.Tensor | SparseBevMap, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv (``weight [C_out, C_in, 1, 1]``) of a dense map or a :class:`SparseBevMap`, as a dense map."""
    if isinstance(x, SparseBevMap):
        return x.pointwise_linear(weight, bias).dense()
    return nn.functional.conv2d(x, weight, bias)


class AnchorHeadOutputs(NamedTuple):
    """Raw head outputs, one tensor per feature level.

    Attributes:
        cls_scores: ``[B, A * num_classes, H, W]`` class logits, A = anchors per cell.
        bbox_preds: ``[B, A * code_size, H, W]`` box deltas (see the box coder).
        dir_cls_preds: ``[B, A * 2, H, W]`` direction logits, or None without a direction classifier.
    """

    cls_scores: list[torch.Tensor]
    bbox_preds: list[torch.Tensor]
    dir_cls_preds: list[torch.Tensor] | None


class AnchorTargets(NamedTuple):
    """Training targets of a batch over all anchors ``[B, L, S, R]`` (cells, sizes, rotations).

    Attributes:
        labels: long, the class of positives, ``num_classes`` for negatives and ignored anchors.
        label_weights: 1 for positives (or ``pos_weight``) and negatives, 0 for ignored anchors.
        bbox_targets: ``[..., code_size]`` encoded ground truth of positives (zero elsewhere).
        positive: bool mask of positives.
        dir_targets: long direction bin of positives' ground truth (0 elsewhere).
        num_positives: ``sum_b max(positives in sample b, 1)``, the loss normaliser.
    """

    labels: torch.Tensor
    label_weights: torch.Tensor
    bbox_targets: torch.Tensor
    positive: torch.Tensor
    dir_targets: torch.Tensor
    num_positives: int


@MODELS.register_module()
class Anchor3DHead(nn.Module):
    """1x1-conv classification, box and direction branches over anchors, with SECOND's training targets.

    Args:
        num_classes: object classes (KITTI 3-class: Pedestrian, Cyclist, Car).
        in_channels: channels of each input map (the neck's ``out_channels``).
        feat_channels: mmdet3d's name for the same number; must equal ``in_channels`` if given.
        use_direction_classifier: predict which of two yaw half-turns a box faces.
        anchor_generator: default ``Anchor3DRangeGenerator`` with one car anchor at two rotations.
        assign_per_class: with a list of assigners (one per anchor size), match the anchors of size ``s``
            only to boxes of class ``s`` (else to all boxes, as mmdet3d's default).
        diff_rad_by_sin: regress ``sin(yaw_pred - yaw_gt)`` instead of the raw yaw difference.
        dir_offset, dir_limit_offset: direction bins: bin 1 when ``yaw - dir_offset`` wrapped to
            ``[0, 2 pi)`` is at least ``pi``; decoding puts ``yaw - dir_offset`` in
            ``[dir_limit_offset * pi, (dir_limit_offset + 1) * pi)`` and adds ``pi`` for bin 1.
        bbox_coder: default ``DeltaXYZWLHRBBoxCoder``.
        loss_cls: default sigmoid ``FocalLoss`` (gamma 2, alpha 0.25).
        loss_bbox: default ``SmoothL1Loss(beta=1/9, loss_weight=2.0)``.
        loss_dir: default ``CrossEntropyLoss(loss_weight=0.2)``.
        train_cfg: ``assigner`` (one config, or a list with one per anchor size), optional ``pos_weight``
            (<= 0: 1) and ``code_weight`` (per-column weights of the box loss). Every assigned anchor
            counts (no sampling, as suits the focal loss); losses are divided by the positives.
        test_cfg: ``nms_pre`` (top anchors kept before NMS, by best class score), ``score_thr``,
            ``use_rotate_nms``, ``nms_thr``, ``max_num``, ``min_bbox_size`` (drop boxes with a smaller
            length or width, metres).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        feat_channels: int | None = None,
        use_direction_classifier: bool = True,
        anchor_generator: dict | None = None,
        assign_per_class: bool = False,
        diff_rad_by_sin: bool = True,
        dir_offset: float = -math.pi / 2,
        dir_limit_offset: float = 0.0,
        bbox_coder: dict | None = None,
        loss_cls: dict | None = None,
        loss_bbox: dict | None = None,
        loss_dir: dict | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        if feat_channels is not None and feat_channels != in_channels:
            raise ValueError(f"Anchor3DHead has no conv before its branches: feat_channels ({feat_channels}) must "
                             f"equal in_channels ({in_channels})")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.use_direction_classifier = use_direction_classifier
        self.assign_per_class = assign_per_class
        self.diff_rad_by_sin = diff_rad_by_sin
        self.dir_offset = dir_offset
        self.dir_limit_offset = dir_limit_offset
        self.train_cfg = dict(train_cfg or {})
        self.test_cfg = dict(test_cfg or {})

        self.prior_generator = TASK_UTILS.build(anchor_generator or dict(
            type="Anchor3DRangeGenerator", ranges=[[0, -39.68, -1.78, 69.12, 39.68, -1.78]],
            sizes=[[3.9, 1.6, 1.56]], rotations=[0, math.pi / 2]))
        self.bbox_coder = TASK_UTILS.build(bbox_coder or dict(type="DeltaXYZWLHRBBoxCoder"))
        self.box_code_size = self.bbox_coder.code_size
        if self.prior_generator.box_dim != self.box_code_size:
            raise ValueError(f"anchors have {self.prior_generator.box_dim} columns, the box coder "
                             f"{self.box_code_size}: give the anchor generator custom_values for the extra ones")
        self.num_anchors = self.prior_generator.num_base_anchors
        self.loss_cls = MODELS.build(loss_cls or dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25))
        self.loss_bbox = MODELS.build(loss_bbox or dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=2.0))
        self.loss_dir = None
        if use_direction_classifier:
            self.loss_dir = MODELS.build(loss_dir or dict(type="CrossEntropyLoss", loss_weight=0.2))
        if not getattr(self.loss_cls, "use_sigmoid", False):
            raise ValueError("Anchor3DHead scores classes with sigmoids: loss_cls needs use_sigmoid=True")

        self.assigners = self._build_assigners(self.train_cfg.get("assigner"))
        self.sampler = TASK_UTILS.build(dict(type="PseudoSampler"))

        self.conv_cls = nn.Conv2d(in_channels, self.num_anchors * num_classes, 1)
        self.conv_reg = nn.Conv2d(in_channels, self.num_anchors * self.box_code_size, 1)
        self.conv_dir_cls = nn.Conv2d(in_channels, self.num_anchors * 2, 1) if use_direction_classifier else None
        self._init_weights()

    def _build_assigners(self, config) -> list | None:
        """One assigner for all anchors, or one per anchor size; None without a training config."""
        if config is None:
            return None
        if isinstance(config, dict):
            return [TASK_UTILS.build(config)]
        if len(config) != self.prior_generator.num_sizes:
            raise ValueError(f"{len(config)} assigners for {self.prior_generator.num_sizes} anchor sizes: give one "
                             "per size (in the order of anchor_generator.sizes) or a single one")
        return [TASK_UTILS.build(item) for item in config]

    def _init_weights(self) -> None:
        prior_probability = 0.01
        for conv in self._branches():
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)
        nn.init.constant_(self.conv_cls.bias, -math.log((1 - prior_probability) / prior_probability))

    def forward(self, features: Sequence[torch.Tensor | SparseBevMap]) -> AnchorHeadOutputs:
        """Per-level raw outputs for feature maps ``[B, in_channels, H, W]`` (see :class:`AnchorHeadOutputs`).

        A level may be a :class:`SparseBevMap` (Ada3D's sparse neck): the 1x1 convs then run on its active pixels
        and its background only, and the outputs are densified (the same maps as on its dense form)."""
        if len(features) != self.prior_generator.num_levels:
            raise ValueError(f"Anchor3DHead got {len(features)} feature maps, its anchor generator has "
                             f"{self.prior_generator.num_levels} levels")
        # the 1x1 branches run as one conv of their stacked weights: one read of the feature map instead of three
        # (on two CPU cores this saves ~0.14 s per iteration of the tiny SECOND: mkldnn's 1x1 convs with few output
        # channels cost nearly as much as the stacked one); FlopCounter counts them through fused_conv_calls
        branches = self._branches()
        weight = torch.cat([conv.weight for conv in branches])
        bias = torch.cat([conv.bias for conv in branches])
        widths = [conv.out_channels for conv in branches]
        outputs = [torch.split(_pointwise_conv(x, weight, bias), widths, dim=1) for x in features]
        return AnchorHeadOutputs(
            [out[0] for out in outputs],
            [out[1] for out in outputs],
            [out[2] for out in outputs] if self.use_direction_classifier else None,
        )

    def _branches(self) -> list[nn.Conv2d]:
        return [conv for conv in (self.conv_cls, self.conv_reg, self.conv_dir_cls) if conv is not None]

    def fused_conv_calls(
        self, inputs: tuple, outputs: AnchorHeadOutputs
    ) -> list[tuple[str, nn.Conv2d, torch.Tensor, torch.Tensor]]:
        """``(name, conv, input, output)`` of every branch conv that :meth:`forward` ran through its stacked
        weights instead of calling the module (:class:`ada3d.benchmark.flops.FlopCounter` counts these)."""
        (features,) = inputs
        names = ["conv_cls", "conv_reg", "conv_dir_cls"]
        maps = [outputs.cls_scores, outputs.bbox_preds, outputs.dir_cls_preds]
        return [(name, conv, x, per_level[level])
                for name, conv, per_level in zip(names, self._branches(), maps)
                for level, x in enumerate(features)]  # fmt: skip

    # ----------------------------------------------------------------------------------- layout
    def anchors(self, featmap_sizes: Sequence[Sequence[int]], device: torch.device) -> torch.Tensor:
        """Anchors of all levels, ``[L, S, R, code_size]``: cells (levels concatenated), sizes, rotations."""
        generator = self.prior_generator
        levels = [
            generator.single_level_grid_anchors(size, scale, device).reshape(
                -1, generator.num_sizes, generator.num_rotations, generator.box_dim
            )
            for size, scale in zip(featmap_sizes, generator.scales)
        ]
        return torch.cat(levels)

    def _per_anchor(self, maps: Sequence[torch.Tensor], channels: int) -> torch.Tensor:
        """Conv outputs ``[B, A * channels, H, W]`` per level -> ``[B, L, S, R, channels]`` as :meth:`anchors`."""
        sizes, rotations = self.prior_generator.num_sizes, self.prior_generator.num_rotations
        return torch.cat(
            [x.permute(0, 2, 3, 1).reshape(len(x), -1, sizes, rotations, channels) for x in maps], dim=1
        )

    def direction_bins(self, yaw: torch.Tensor) -> torch.Tensor:
        """Direction class (0 or 1) of yaws (radians), relative to ``dir_offset``."""
        return (limit_period(yaw - self.dir_offset, 0, 2 * math.pi) >= math.pi).long()

    # ---------------------------------------------------------------------------------- training
    def get_targets(self, anchors: torch.Tensor, batch_gt_instances: Sequence[InstanceData]) -> AnchorTargets:
        """Assign the anchors ``[L, S, R, code_size]`` to each sample's ``bboxes_3d`` / ``labels_3d``."""
        if self.assigners is None:
            raise ValueError("Anchor3DHead needs train_cfg with an 'assigner' to compute training targets")
        per_sample = [self._targets_single(anchors, gt) for gt in batch_gt_instances]
        stacked = [torch.stack(parts) for parts in list(zip(*per_sample))[:5]]
        num_positives = sum(max(int(positive.sum()), 1) for positive in stacked[3])
        return AnchorTargets(*stacked, num_positives)

    def _targets_single(self, anchors: torch.Tensor, gt: InstanceData) -> tuple[torch.Tensor, ...]:
        code_size, grid = self.box_code_size, anchors.shape[:-1]
        gt_boxes = gt.bboxes_3d.to(device=anchors.device, dtype=anchors.dtype)[:, :code_size]
        gt_labels = gt.labels_3d.to(anchors.device).long()
        flat_anchors = anchors.reshape(-1, code_size)
        rows = torch.arange(len(flat_anchors), device=anchors.device).view(grid)
        if len(self.assigners) == 1:
            groups = [(self.assigners[0], rows.reshape(-1), gt_boxes, gt_labels)]
        else:  # one assigner per anchor size
            groups = []
            for size_index, assigner in enumerate(self.assigners):
                chosen = gt_labels == size_index if self.assign_per_class else slice(None)
                groups.append((assigner, rows[:, size_index].reshape(-1), gt_boxes[chosen], gt_labels[chosen]))

        labels = torch.full((len(flat_anchors),), self.num_classes, dtype=torch.long, device=anchors.device)
        label_weights = flat_anchors.new_zeros(len(flat_anchors))
        bbox_targets = torch.zeros_like(flat_anchors)
        positive = torch.zeros_like(labels, dtype=torch.bool)
        dir_targets = torch.zeros_like(labels)
        pos_weight = self.train_cfg.get("pos_weight", -1)
        for assigner, group_rows, boxes, box_labels in groups:
            group_anchors = flat_anchors[group_rows]
            sampling = self.sampler.sample(assigner.assign(group_anchors, boxes, box_labels), group_anchors, boxes)
            pos, neg = group_rows[sampling.pos_inds], group_rows[sampling.neg_inds]
            labels[pos] = box_labels[sampling.pos_assigned_gt_inds]
            label_weights[pos] = 1.0 if pos_weight <= 0 else pos_weight
            label_weights[neg] = 1.0
            bbox_targets[pos] = self.bbox_coder.encode(sampling.pos_bboxes, sampling.pos_gt_bboxes)
            positive[pos] = True
            dir_targets[pos] = self.direction_bins(sampling.pos_gt_bboxes[:, 6])
        return (labels.view(grid), label_weights.view(grid), bbox_targets.view(*grid, code_size),
                positive.view(grid), dir_targets.view(grid))

    @staticmethod
    def add_sin_difference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Replace the yaw columns so that their difference is ``sin(yaw_pred - yaw_target)``."""
        pred_yaw, target_yaw = pred[:, 6:7], target[:, 6:7]
        pred = torch.cat([pred[:, :6], torch.sin(pred_yaw) * torch.cos(target_yaw), pred[:, 7:]], dim=1)
        target = torch.cat([target[:, :6], torch.cos(pred_yaw) * torch.sin(target_yaw), target[:, 7:]], dim=1)
        return pred, target

    def loss_by_feat(self, outputs: AnchorHeadOutputs, batch_gt_instances: Sequence[InstanceData]) -> dict:
        """``dict(loss_cls, loss_bbox[, loss_dir])``, each normalised by the number of positive anchors."""
        featmap_sizes = [tuple(x.shape[-2:]) for x in outputs.cls_scores]
        anchors = self.anchors(featmap_sizes, outputs.cls_scores[0].device)
        targets = self.get_targets(anchors, batch_gt_instances)
        num_positives = targets.num_positives
        cls_scores = self._per_anchor(outputs.cls_scores, self.num_classes).reshape(-1, self.num_classes)
        losses = dict(loss_cls=self.loss_cls(
            cls_scores, targets.labels.reshape(-1), targets.label_weights.reshape(-1), avg_factor=num_positives))

        positive = targets.positive.reshape(-1)
        code_size = self.box_code_size
        bbox_preds = self._per_anchor(outputs.bbox_preds, code_size).reshape(-1, code_size)[positive]
        bbox_targets = targets.bbox_targets.reshape(-1, code_size)[positive]
        weights = bbox_preds.new_tensor(self.train_cfg.get("code_weight", [1.0] * code_size)).expand_as(bbox_preds)
        if self.diff_rad_by_sin:
            bbox_preds, bbox_targets = self.add_sin_difference(bbox_preds, bbox_targets)
        losses["loss_bbox"] = self.loss_bbox(bbox_preds, bbox_targets, weights, avg_factor=num_positives)
        if self.use_direction_classifier:
            dir_preds = self._per_anchor(outputs.dir_cls_preds, 2).reshape(-1, 2)[positive]
            dir_targets = targets.dir_targets.reshape(-1)[positive]
            losses["loss_dir"] = self.loss_dir(
                dir_preds, dir_targets, dir_preds.new_ones(len(dir_preds)), avg_factor=num_positives)
        return losses

    def loss(self, features: Sequence[torch.Tensor], data_samples: Sequence[Det3DDataSample]) -> dict:
        """Forward and losses against ``data_samples[i].gt_instances_3d``."""
        return self.loss_by_feat(self(features), [sample.gt_instances_3d for sample in data_samples])

    # -------------------------------------------------------------------------------- inference
    @torch.no_grad()
    def predict_by_feat(self, outputs: AnchorHeadOutputs, test_cfg: dict | None = None) -> list[InstanceData]:
        """Decode and NMS each sample: ``InstanceData(bboxes_3d [K, code_size], scores_3d [K], labels_3d [K])``."""
        cfg = self.test_cfg if test_cfg is None else test_cfg
        featmap_sizes = [tuple(x.shape[-2:]) for x in outputs.cls_scores]
        code_size = self.box_code_size
        anchors = self.anchors(featmap_sizes, outputs.cls_scores[0].device).reshape(-1, code_size)
        scores = self._per_anchor(outputs.cls_scores, self.num_classes).flatten(1, 3).sigmoid()
        deltas = self._per_anchor(outputs.bbox_preds, code_size).flatten(1, 3)
        dir_bins = None
        if self.use_direction_classifier:
            dir_bins = self._per_anchor(outputs.dir_cls_preds, 2).flatten(1, 3).argmax(dim=-1)
        return [
            self._predict_single(anchors, scores[b], deltas[b], None if dir_bins is None else dir_bins[b], cfg)
            for b in range(len(scores))
        ]

    def _predict_single(self, anchors, scores, deltas, dir_bins, cfg) -> InstanceData:
        nms_pre = cfg.get("nms_pre", -1)
        if 0 < nms_pre < len(scores):
            chosen = scores.max(dim=1).values.topk(nms_pre).indices
            anchors, scores, deltas = anchors[chosen], scores[chosen], deltas[chosen]
            dir_bins = None if dir_bins is None else dir_bins[chosen]
        boxes = self.bbox_coder.decode(anchors, deltas)
        min_size = cfg.get("min_bbox_size", 0)
        if min_size > 0:
            large = (boxes[:, 3] >= min_size) & (boxes[:, 4] >= min_size)
            boxes, scores = boxes[large], scores[large]
            dir_bins = None if dir_bins is None else dir_bins[large]
        kept = multiclass_nms_bev(
            boxes, scores, score_threshold=cfg.get("score_thr", 0.0), iou_threshold=cfg.get("nms_thr", 0.01),
            max_num=cfg.get("max_num"), rotated=cfg.get("use_rotate_nms", True))
        boxes = boxes[kept.indices]
        if dir_bins is not None:
            yaw = limit_period(boxes[:, 6] - self.dir_offset, self.dir_limit_offset, math.pi)
            yaw = yaw + self.dir_offset + math.pi * dir_bins[kept.indices].to(boxes.dtype)
            boxes[:, 6] = limit_period(yaw)
        return InstanceData(bboxes_3d=boxes, scores_3d=kept.scores, labels_3d=kept.labels)

    def predict(self, features: Sequence[torch.Tensor]) -> list[InstanceData]:
        """Forward, decode and NMS: one :class:`InstanceData` per sample."""
        return self.predict_by_feat(self(features))
