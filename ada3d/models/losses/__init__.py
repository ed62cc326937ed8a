"""Losses under mmdet's config names, registered in :data:`ada3d.registry.MODELS`."""

from ada3d.models.losses.cross_entropy_loss import CrossEntropyLoss
from ada3d.models.losses.focal_loss import FocalLoss
from ada3d.models.losses.smooth_l1_loss import SmoothL1Loss

__all__ = ["CrossEntropyLoss", "FocalLoss", "SmoothL1Loss"]
