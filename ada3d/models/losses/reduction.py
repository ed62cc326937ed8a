"""Weighting and reduction shared by the losses (mmdet's semantics for ``weight`` and ``avg_factor``)."""

from __future__ import annotations

import torch

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
