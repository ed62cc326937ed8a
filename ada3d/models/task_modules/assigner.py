"""IoU-threshold assignment of anchors to ground-truth boxes (mmdet3d's ``Max3DIoUAssigner``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ada3d.registry import TASK_UTILS


@dataclass
class AssignResult:
    """The assignment of ``N`` anchors to ``num_gts`` boxes.

    Attributes:
        num_gts: number of ground-truth boxes.
        gt_inds: ``[N]`` long: ``0`` negative, ``-1`` ignored (IoU between the thresholds), ``k >= 1``
            positive for ground-truth box ``k - 1``.
        max_overlaps: ``[N]`` each anchor's best IoU with any box (0 without boxes).
        labels: ``[N]`` long, the class of the matched box for positives, ``-1`` elsewhere.
    """

    num_gts: int
    gt_inds: torch.Tensor
    max_overlaps: torch.Tensor
    labels: torch.Tensor


@TASK_UTILS.register_module(name=["Max3DIoUAssigner", "MaxIoUAssigner"])
class Max3DIoUAssigner:
    """Assign each anchor to the box it overlaps most, by IoU thresholds.

    An anchor is negative when its best IoU is below ``neg_iou_thr`` (or inside the range
    ``neg_iou_thr = (low, high)``), positive when at least ``pos_iou_thr``, ignored otherwise. With
    ``match_low_quality`` every box whose best IoU reaches ``min_pos_iou`` (and is above 0) also
    claims its best anchor (all anchors tied at that IoU with ``gt_max_assign_all``), so boxes between
    anchors are not left without a positive; where two boxes claim one anchor the later box wins.

    Args:
        pos_iou_thr, neg_iou_thr, min_pos_iou, gt_max_assign_all, match_low_quality: as above.
        ignore_iof_thr: kept for mmdet3d configs; ignore regions are not supported, so it must be -1.
        iou_calculator: config of the IoU, default ``dict(type='BboxOverlapsNearest3D')``.
    """

    def __init__(
        self,
        pos_iou_thr: float,
        neg_iou_thr: float | Sequence[float],
        min_pos_iou: float = 0.0,
        gt_max_assign_all: bool = True,
        match_low_quality: bool = True,
        ignore_iof_thr: float = -1,
        iou_calculator: dict | None = None,
    ) -> None:
        if ignore_iof_thr != -1:
            raise ValueError(f"ignore regions are not supported: ignore_iof_thr must be -1, got {ignore_iof_thr}")
        if isinstance(neg_iou_thr, Sequence) and len(neg_iou_thr) != 2:
            raise ValueError(f"neg_iou_thr must be a number or a (low, high) pair, got {neg_iou_thr}")
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.match_low_quality = match_low_quality
        self.ignore_iof_thr = ignore_iof_thr
        self.iou_calculator = TASK_UTILS.build(
            dict(type="BboxOverlapsNearest3D") if iou_calculator is None else iou_calculator
        )

    def assign(self, anchors: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor | None = None):
        """Assign ``anchors [N, >=7]`` to ``gt_boxes [M, >=7]`` (labels ``[M]`` long); returns :class:`AssignResult`."""
        num_anchors, num_gts = len(anchors), len(gt_boxes)
        if num_gts == 0:
            zeros = anchors.new_zeros(num_anchors, dtype=torch.long)
            return AssignResult(0, zeros, anchors.new_zeros(num_anchors), zeros - 1)
        overlaps = self.iou_calculator(gt_boxes, anchors)  # [M, N]
        max_overlaps, argmax = overlaps.max(dim=0)
        gt_inds = torch.full_like(argmax, -1)
        if isinstance(self.neg_iou_thr, Sequence):
            negative = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        else:
            negative = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        gt_inds[negative] = 0
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds[positive] = argmax[positive] + 1
        if self.match_low_quality:
            gt_max, gt_argmax = overlaps.max(dim=1)
            if self.gt_max_assign_all:
                claims = overlaps == gt_max[:, None]
            else:
                claims = torch.zeros_like(overlaps, dtype=torch.bool)
                claims[torch.arange(num_gts, device=claims.device), gt_argmax] = True
            claims &= ((gt_max >= self.min_pos_iou) & (gt_max > 0))[:, None]
            box, anchor = claims.nonzero(as_tuple=True)  # few claims: each box ties at its best IoU
            claimant = torch.zeros_like(gt_inds).scatter_reduce_(0, anchor, box + 1, "amax")  # the last box, 0 if none
            gt_inds = torch.where(claimant > 0, claimant, gt_inds)
        labels = torch.full_like(gt_inds, -1)
        if gt_labels is not None:
            matched = gt_inds > 0
            labels[matched] = gt_labels[gt_inds[matched] - 1]
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)
