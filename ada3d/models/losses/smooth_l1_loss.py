"""Smooth L1 (Huber-like) regression loss, mmdet's ``SmoothL1Loss``."""

from __future__ import annotations

import torch

from ada3d.models.losses.reduction import WeightedLoss
from ada3d.registry import MODELS


@MODELS.register_module()
class SmoothL1Loss(WeightedLoss):
    """``0.5 d^2 / beta`` for ``|d| < beta``, ``|d| - 0.5 beta`` beyond, element-wise.

    Args:
        beta: where the quadratic part ends (SECOND uses 1/9).
        reduction: ``'none' | 'mean' | 'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__(reduction, loss_weight)
        if beta <= 0:
            raise ValueError(f"beta must be > 0, got {beta}")
        self.beta = beta

    def elementwise(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if pred.shape != target.shape:
            raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
        diff = (pred - target).abs()
        loss = torch.where(diff < self.beta, 0.5 * diff * diff / self.beta, diff - 0.5 * self.beta)
        return loss, weight
