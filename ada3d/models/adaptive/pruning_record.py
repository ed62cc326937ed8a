"""What one Ada3D drop stage did to one batch: the record a detector leaves in ``last_pruning``."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PruningRecord:
    """The occupied and kept cells of one drop stage, on the importance grid.

    Attributes:
        stage: the stage that dropped, e.g. ``'encoder_layer2'`` (3D voxel columns) or ``'bev'`` (BEV pixels).
        grid: the importance grid (a ``BevGrid``: origin, cell size and shape ``[H, W]``).
        occupied: bool ``[B, H, W]``, cells holding at least one active site before dropping.
        kept: bool ``[B, H, W]``, the occupied cells that were kept (a subset of ``occupied``).
        scores: float ``[B, H, W]``, the scores the cells were ranked by.
        sites_before / sites_after: int64 ``[B]``, active sites per sample before / after dropping (voxels
            for a 3D stage, pixels for ``'bev'``); tensors on the model's device, so recording costs no sync.
    """

    stage: str
    grid: object
    occupied: torch.Tensor
    kept: torch.Tensor
    scores: torch.Tensor
    sites_before: torch.Tensor
    sites_after: torch.Tensor
