"""Sigmoid focal loss (Lin et al., "Focal Loss for Dense Object Detection"), mmdet's ``FocalLoss``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ada3d.models.losses.reduction import WeightedLoss
from ada3d.registry import MODELS


def labels_to_one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N]`` labels in ``[0, num_classes]`` (``num_classes`` = background) -> ``[N, num_classes]`` targets."""
    one_hot = torch.zeros((len(labels), num_classes + 1), dtype=dtype, device=labels.device)
    one_hot.scatter_(1, labels[:, None], 1)
    return one_hot[:, :num_classes]


@MODELS.register_module()
class FocalLoss(WeightedLoss):
    """``-alpha_t (1 - p_t)^gamma log(p_t)`` per class with sigmoid probabilities.

    Args:
        use_sigmoid: must be True (the softmax variant is not provided).
        gamma: focusing exponent.
        alpha: weight of the positive term (``1 - alpha`` for the negative one).
        reduction: ``'none' | 'mean' | 'sum'``.
        loss_weight: multiplier of the loss.

    ``forward(pred [N, C] logits, target [N] labels with C = background or [N, C] targets,
    weight [N] or [N, C], avg_factor)``.
    """

    def __init__(
        self,
        use_sigmoid: bool = True,
        gamma: float = 2.0,
        alpha: float = 0.25,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(reduction, loss_weight)
        if not use_sigmoid:
            raise ValueError("FocalLoss is the sigmoid focal loss: use_sigmoid must be True")
        self.use_sigmoid = use_sigmoid
        self.gamma = gamma
        self.alpha = alpha

    def elementwise(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if target.dim() == 1:
            target = labels_to_one_hot(target, pred.shape[1], pred.dtype)
        probability = pred.sigmoid()
        p_t = probability * target + (1 - probability) * (1 - target)
        alpha_t = self.alpha * target + (1 - self.alpha) * (1 - target)
        loss = F.binary_cross_entropy_with_logits(pred, target, reduction="none") * alpha_t * (1 - p_t).pow(self.gamma)
        if weight is not None and weight.dim() == 1:
            weight = weight[:, None]
        return loss, weight
