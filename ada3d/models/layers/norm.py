"""Normalisation layers under mmdet3d's config names (``BN1d``, ``BN2d``, ``SyncBN``), without mmcv."""

from __future__ import annotations

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
