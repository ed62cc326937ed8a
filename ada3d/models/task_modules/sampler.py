"""Sampling of assigned anchors; the pseudo sampler keeps them all (focal loss needs no sampling)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ada3d.models.task_modules.assigner import AssignResult
from ada3d.registry import TASK_UTILS


@dataclass
class SamplingResult:
    """The anchors used for the loss.

    Attributes:
        pos_inds / neg_inds: ``[P]`` / ``[Q]`` long indices of positive / negative anchors.
        pos_bboxes: ``[P, C]`` the positive anchors.
        pos_gt_bboxes: ``[P, C]`` the ground-truth box of each positive.
        pos_assigned_gt_inds: ``[P]`` long index of that box.
    """

    pos_inds: torch.Tensor
    neg_inds: torch.Tensor
    pos_bboxes: torch.Tensor
    pos_gt_bboxes: torch.Tensor
    pos_assigned_gt_inds: torch.Tensor


@TASK_UTILS.register_module()
class PseudoSampler:
    """Take every positive and every negative anchor of an :class:`AssignResult`."""

    def sample(self, assign_result: AssignResult, anchors: torch.Tensor, gt_boxes: torch.Tensor) -> SamplingResult:
        pos_inds = (assign_result.gt_inds > 0).nonzero().squeeze(1)
        neg_inds = (assign_result.gt_inds == 0).nonzero().squeeze(1)
        assigned = assign_result.gt_inds[pos_inds] - 1
        return SamplingResult(pos_inds, neg_inds, anchors[pos_inds], gt_boxes[assigned], assigned)
