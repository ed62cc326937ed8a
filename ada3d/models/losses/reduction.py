"""Weighting and reduction shared by the losses (mmdet's semantics for ``weight`` and ``avg_factor``)."""

from __future__ import annotations

import torch
from torch import nn

_REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def weight_reduce_loss(
    loss: torch.Tensor, weight: torch.Tensor | None, reduction: str, avg_factor: float | torch.Tensor | None
) -> torch.Tensor:
    """Multiply element-wise losses by ``weight`` (broadcast), then reduce.

    ``mean`` divides the sum by ``avg_factor`` when given (e.g. the number of positive anchors), else by
    the element count; ``sum`` with an ``avg_factor`` is an error; ``none`` returns the weighted losses.
    """
    if weight is not None:
        loss = loss * weight
    if reduction == "none":
        return loss
    if reduction == "sum":
        if avg_factor is not None:
            raise ValueError("avg_factor only applies to reduction='mean'")
        return loss.sum()
    if avg_factor is None:
        return loss.mean()
    return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)


class WeightedLoss(nn.Module):
    """Base of the losses: ``forward(pred, target, weight, avg_factor, reduction_override)`` with mmdet's
    semantics; a subclass computes the element-wise loss (and may reshape ``weight`` to broadcast).

    Args:
        reduction: ``'none' | 'mean' | 'sum'``.
        loss_weight: multiplier of the loss.
    """

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)
        self.loss_weight = loss_weight

    def elementwise(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The unreduced loss and the weight to multiply it with."""
        raise NotImplementedError

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        avg_factor: float | torch.Tensor | None = None,
        reduction_override: str | None = None,
    ) -> torch.Tensor:
        reduction = check_reduction(reduction_override or self.reduction)
        loss, weight = self.elementwise(pred, target, weight)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
