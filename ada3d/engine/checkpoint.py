"""Loading mmengine checkpoints under torch >= 2.6.

torch 2.6 made ``torch.load`` default to ``weights_only=True``; mmengine 0.10's local loader does not
pass the flag, and its checkpoints hold more than tensors (message hub, optimizer state, numpy
scalars), so ``--resume`` and ``load_from`` fail. Importing ``ada3d.engine`` registers a local loader
that passes ``weights_only=False``. Unpickling can run code: load checkpoints you trust, as with any
PyTorch checkpoint.
"""

from __future__ import annotations

import os.path as osp

import torch
from mmengine.runner.checkpoint import CheckpointLoader


def load_local_checkpoint(filename: str, map_location=None) -> dict:
    """mmengine's loader for local paths, with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f"checkpoint not found: {filename}")
    return torch.load(filename, map_location=map_location, weights_only=False)


def register_checkpoint_loader() -> None:
    """Make mmengine load local checkpoints with :func:`load_local_checkpoint` (idempotent)."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)
