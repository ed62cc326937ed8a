"""Cross-entropy classification loss, mmdet's ``CrossEntropyLoss`` (softmax or per-class sigmoid)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ada3d.models.losses.focal_loss import labels_to_one_hot
from ada3d.models.losses.reduction import WeightedLoss
from ada3d.registry import MODELS


@MODELS.register_module()
class CrossEntropyLoss(WeightedLoss):
    """Softmax cross entropy over ``C`` classes, or binary cross entropy per class (``use_sigmoid``).

    Args:
        use_sigmoid: per-class sigmoid; labels equal to ``C`` are background (all-zero targets).
        class_weight: optional per-class weights ``[C]``.
        reduction: ``'none' | 'mean' | 'sum'``.
        loss_weight: multiplier of the loss.

    ``forward(pred [N, C] logits, target [N] long labels, weight [N], avg_factor)``.
    """

    def __init__(
        self,
        use_sigmoid: bool = False,
        class_weight: Sequence[float] | None = None,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ) -> None:
        super().__init__(reduction, loss_weight)
        self.use_sigmoid = use_sigmoid
        self.class_weight = None if class_weight is None else list(class_weight)

    def elementwise(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        class_weight = None if self.class_weight is None else pred.new_tensor(self.class_weight)
        if self.use_sigmoid:
            one_hot = labels_to_one_hot(target, pred.shape[1], pred.dtype)
            loss = F.binary_cross_entropy_with_logits(pred, one_hot, weight=class_weight, reduction="none")
            if weight is not None:
                weight = weight[:, None]
        else:
            loss = F.cross_entropy(pred, target, weight=class_weight, reduction="none")
        return loss, weight
