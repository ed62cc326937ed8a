"""Greedy non-maximum suppression of LiDAR boxes in bird's-eye view (torch; CPU and GPU).

The pairwise IoU matrix is computed on the boxes' device (rotated: :func:`ada3d.ops.iou3d.bev_iou`,
or axis-aligned ignoring yaw); the greedy pass walks the boolean overlap matrix on the CPU, one row per
kept box. Meant for the few hundred to few thousand boxes left after a detector's top-k (``nms_pre``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ada3d.ops.iou3d import axis_aligned_bev_iou, bev_iou


def nms_bev(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, rotated: bool = True) -> torch.Tensor:
    """Greedy NMS: keep the best box, drop the boxes overlapping it by more than ``iou_threshold``, repeat.

    Args:
        boxes: ``[N, >=7]`` LiDAR boxes.
        scores: ``[N]`` scores.
        iou_threshold: a box is dropped when its BEV IoU with a kept box is ``> iou_threshold``.
        rotated: rotated BEV IoU (True) or axis-aligned IoU ignoring yaw (False).

    Returns:
        ``[K]`` long indices into ``boxes`` of the kept boxes, by decreasing score (ties: lower index first).
    """
    if boxes.dim() != 2 or boxes.shape[1] < 7 or scores.shape != (len(boxes),):
        raise ValueError(f"nms_bev needs boxes [N, >=7] and scores [N], got {tuple(boxes.shape)} and "
                         f"{tuple(scores.shape)}")
    order = torch.argsort(scores, descending=True, stable=True)
    if len(order) == 0:
        return order
    sorted_boxes = boxes[order]
    iou = bev_iou(sorted_boxes, sorted_boxes) if rotated else axis_aligned_bev_iou(sorted_boxes, sorted_boxes)
    overlaps = (iou > iou_threshold).cpu().numpy()
    suppressed = np.zeros(len(order), dtype=bool)
    kept = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(i)
        suppressed[i + 1 :] |= overlaps[i, i + 1 :]
    return order[torch.as_tensor(kept, device=order.device)]


class MultiClassNMSResult(NamedTuple):
    """What :func:`multiclass_nms_bev` keeps, by decreasing score.

    Attributes:
        indices: ``[K]`` long, the row of each kept box in the input.
        labels: ``[K]`` long, its class.
        scores: ``[K]``, its score for that class.
    """

    indices: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor


def multiclass_nms_bev(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float,
    iou_threshold: float,
    max_num: int | None = None,
    rotated: bool = True,
) -> MultiClassNMSResult:
    """NMS per class (mmdet3d's ``box3d_multiclass_nms``): a box may survive for several classes.

    Args:
        boxes: ``[N, >=7]`` LiDAR boxes.
        scores: ``[N, C]`` per-class scores (no background column).
        score_threshold: class ``c`` considers the boxes with ``scores[:, c] > score_threshold``.
        iou_threshold, rotated: as in :func:`nms_bev`.
        max_num: keep at most this many detections over all classes (the best ones); None: all.
    """
    if scores.dim() != 2 or len(scores) != len(boxes):
        raise ValueError(f"scores must be [N, C] with N = {len(boxes)} boxes, got {tuple(scores.shape)}")
    indices, labels, kept_scores = [], [], []
    for label in range(scores.shape[1]):
        candidates = (scores[:, label] > score_threshold).nonzero().squeeze(1)
        keep = candidates[nms_bev(boxes[candidates], scores[candidates, label], iou_threshold, rotated)]
        indices.append(keep)
        labels.append(torch.full_like(keep, label))
        kept_scores.append(scores[keep, label])
    indices, labels, kept_scores = torch.cat(indices), torch.cat(labels), torch.cat(kept_scores)
    order = torch.argsort(kept_scores, descending=True, stable=True)
    if max_num is not None:
        order = order[:max_num]
    return MultiClassNMSResult(indices[order], labels[order], kept_scores[order])
