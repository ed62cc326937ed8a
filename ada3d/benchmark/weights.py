"""The weights every engine of a benchmark shares: seeded, with non-trivial norm statistics."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def seeded_encoder(
    build: Callable[[], nn.Module], device: torch.device, dtype: torch.dtype, seed: int = 0
) -> nn.Module:
    """``build()`` under ``torch.manual_seed(seed)``, BatchNorm running statistics drawn from the same seed
    (mean in [-0.1, 0.1], variance in [0.5, 2]; the defaults 0 / 1 would make eval-mode BN an identity),
    moved to ``device`` and ``dtype``."""
    torch.manual_seed(seed)
    encoder = build()
    for module in encoder.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return encoder.to(device, dtype)
