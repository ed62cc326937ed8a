"""Normalisation layers under mmdet3d's config names (``BN1d``, ``BN2d``, ``SyncBN``), without mmcv."""

from __future__ import annotations

import torch
from torch import nn

from ada3d.registry import MODELS

MODELS.register_module("BN1d", module=nn.BatchNorm1d)
MODELS.register_module("BN2d", module=nn.BatchNorm2d)
MODELS.register_module("BN", module=nn.BatchNorm2d)
MODELS.register_module("SyncBN", module=nn.SyncBatchNorm)


def build_norm_layer(cfg: dict, num_features: int) -> nn.Module:
    """Build the norm layer described by ``cfg`` (e.g. ``dict(type='BN1d', eps=1e-3, momentum=0.01)``).

    ``cfg`` is not modified.
    """
    if "type" not in cfg:
        raise ValueError(f"norm_cfg needs a 'type' key, got {cfg!r}")
    return MODELS.build(dict(cfg, num_features=num_features))


def has_inference_affine(norm: nn.Module) -> bool:
    """Whether ``norm`` is a torch BatchNorm (1d, 2d or synced) with running statistics, i.e. a fixed per-channel
    affine map in eval mode (:func:`inference_affine`)."""
    batch_norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm)
    return isinstance(norm, batch_norms) and norm.running_var is not None and norm.running_mean is not None


def inference_affine(norm: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scale, shift)`` ``[C]`` with ``norm(x) == x * scale + shift`` per channel in eval mode, from its running
    statistics (and affine parameters, if any), computed now: later weight or statistics changes need a new call.

    Raises:
        ValueError: for a BatchNorm without running statistics (it normalises by batch statistics in eval too).
    """
    if norm.running_var is None or norm.running_mean is None:
        raise ValueError(f"{norm} keeps no running statistics: it has no fixed inference affine map")
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    shift = -norm.running_mean * scale
    if norm.affine:
        shift = shift + norm.bias
    return scale, shift
