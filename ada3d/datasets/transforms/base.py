"""What every transform shares: ``transform(results) -> results`` called as a function, a readable repr, and
the random generator of augmentations."""

from __future__ import annotations

import numpy as np
import torch


class BaseTransform:
    """A pipeline step: ``transform(results)`` returns the updated results dict (or None to skip the sample)."""

    def __call__(self, results: dict) -> dict | None:
        return self.transform(results)

    def transform(self, results: dict) -> dict | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in vars(self).items() if not key.startswith("_"))
        return f"{type(self).__name__}({settings})"


def augmentation_rng() -> np.random.Generator:
    """A numpy generator seeded from torch's generator.

    torch's generator is the one mmengine seeds (``randomness=dict(seed=...)``) and that the DataLoader seeds
    differently in each worker, so augmentations are reproducible and differ between workers.
    """
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def check_local_backend(backend_args: dict | None) -> None:
    """Accept mmdet3d configs' ``backend_args=None`` (local files); refuse other file backends loudly."""
    if backend_args is not None:
        raise ValueError(f"only local files are supported: backend_args must be None, got {backend_args}")
