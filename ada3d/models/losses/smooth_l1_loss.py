"""Smooth L1 (Huber-like) regression loss, mmdet's ``SmoothL1Loss``."""

from __future__ import annotations

import torch
from torch import nn

from ada3d.models.losses.reduction import check_reduction, weight_reduce_loss
from ada3d.registry import MODELS


@MODELS.register_module()
class SmoothL1Loss(nn.Module):
    """``0.5 d^2 / beta`` for ``|d| < beta``, ``|d| - 0.5 beta`` beyond, element-wise.

    Args:
        beta: where the quadratic part ends (SECOND uses 1/9).
        reduction: ``'none' | 'mean' | 'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        reduction = check_reduction(reduction_override or self.reduction)
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
        diff = (pred - target).abs()
        loss = torch.where(diff < self.beta, 0.5 * diff * diff / self.beta, diff - 0.5 * self.beta)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
