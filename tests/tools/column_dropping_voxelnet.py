"""A stand-in with Ada3DVoxelNet's benchmark interface (``set_keep_ratios``, ``last_pruning``) for tool tests:
the tiny dense SECOND that zeroes all but the top ``keep_ratio_bev`` of the occupied BEV cells."""

from __future__ import annotations

import torch

from ada3d.models.adaptive.pruning_record import PruningRecord
from ada3d.models.detectors import VoxelNet
from ada3d.registry import MODELS


@MODELS.register_module()
class ColumnDroppingVoxelNet(VoxelNet):
    """Scores: ``distance`` prefers small x (near cells), ``random`` seeded noise, ``predictor`` the BEV feature
    magnitude. Exactly ``max(1, round(ratio * occupied))`` occupied cells kept per sample."""

    def __init__(self, *args, adaptive: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.keep_ratio_bev = (adaptive or {}).get("keep_ratio_bev", 1.0)
        self.strategy = (adaptive or {}).get("strategy", "predictor")
        self.last_pruning: list[PruningRecord] = []

    def set_keep_ratios(self, keep_ratios_3d=None, keep_ratio_bev=None, strategy=None) -> None:
        if keep_ratios_3d:
            raise ValueError("ColumnDroppingVoxelNet has no 3D drop stages")
        self.keep_ratio_bev = self.keep_ratio_bev if keep_ratio_bev is None else keep_ratio_bev
        self.strategy = self.strategy if strategy is None else strategy

    def _scores(self, bev: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = bev.shape
        if self.strategy == "distance":
            return -torch.arange(width, dtype=bev.dtype).expand(batch, height, width)
        if self.strategy == "random":
            return torch.rand(batch, height, width, generator=torch.Generator().manual_seed(0))
        return bev.abs().sum(dim=1)

    def encode_3d(self, voxels: dict) -> torch.Tensor:
        bev = super().encode_3d(voxels)
        occupied = (bev != 0).any(dim=1)
        scores = self._scores(bev)
        kept = torch.zeros_like(occupied)
        for b in range(len(bev)):
            cells = occupied[b].flatten().nonzero().squeeze(1)
            if len(cells):
                count = max(1, round(self.keep_ratio_bev * len(cells)))
                best = scores[b].flatten()[cells].topk(count).indices
                kept[b].view(-1)[cells[best]] = True
        self.last_pruning = [PruningRecord("bev", None, occupied, kept, scores, occupied.flatten(1).sum(1),
                                           kept.flatten(1).sum(1))]
        return bev * kept.unsqueeze(1)
