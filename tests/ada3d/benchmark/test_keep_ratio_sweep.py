"""keep_ratio_sweep.sweep: which ratios each point sets and records, on a stand-in runner (the end-to-end run of
tools/ada3d_sweep.py is in tests/tools/test_ada3d_tools.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from mmengine import ConfigDict

from ada3d.benchmark.keep_ratio_sweep import sweep
from ada3d.models.adaptive.pruning_record import PruningRecord


class KeepRatioModel(torch.nn.Module):
    """Keeps ``round(keep_ratio_bev * 10)`` of 10 occupied BEV cells of a 4 x 5 grid; its AP is its BEV ratio."""

    def __init__(self, keep_ratios_3d=(0.6,), keep_ratio_bev=0.75) -> None:
        super().__init__()
        self.keep_ratios_3d, self.keep_ratio_bev, self.strategy = tuple(keep_ratios_3d), keep_ratio_bev, "predictor"
        self.last_pruning: list[PruningRecord] = []

    def set_keep_ratios(self, keep_ratios_3d=None, keep_ratio_bev=None, strategy=None) -> None:
        self.keep_ratios_3d = self.keep_ratios_3d if keep_ratios_3d is None else tuple(keep_ratios_3d)
        self.keep_ratio_bev = self.keep_ratio_bev if keep_ratio_bev is None else keep_ratio_bev
        self.strategy = self.strategy if strategy is None else strategy

    def forward(self) -> None:
        occupied = torch.zeros(1, 4, 5, dtype=torch.bool)
        occupied.view(-1)[:10] = True
        kept = torch.zeros_like(occupied)
        kept.view(-1)[: round(self.keep_ratio_bev * 10)] = True
        counts = occupied.flatten(1).sum(1)
        self.last_pruning = [PruningRecord("bev", None, occupied, kept, kept.float(), counts, kept.flatten(1).sum(1))]


class Runner:
    def __init__(self, model) -> None:
        self.model = model

    def test(self) -> dict:
        self.model()
        return {"Kitti metric/Overall_3D_AP40_moderate": 100 * self.model.keep_ratio_bev}


def config(drop_3d_stages=("input",)) -> SimpleNamespace:
    """What sweep reads of a config: its file name and ``model.adaptive.drop_3d_stages``."""
    return SimpleNamespace(filename="ada3d-input_stage3.py",
                           model=ConfigDict(adaptive=dict(drop_3d_stages=drop_3d_stages)))  # fmt: skip


def test_each_point_records_the_ratios_it_ran_with():
    both = sweep(Runner(KeepRatioModel()), config(), [0.5, 0.3], ["predictor"], "same")
    assert [(p.keep_ratios_3d, p.keep_ratio_bev) for p in both] == [([0.5], 0.5), ([0.3], 0.3)]
    assert [p.bev_kept_of_occupied for p in both] == pytest.approx([0.5, 0.3])
    assert [p.metrics["Overall_3D_AP40_moderate"] for p in both] == pytest.approx([50, 30])
    only_bev = sweep(Runner(KeepRatioModel()), config(), [0.5], ["random"], "fixed")
    assert [(p.strategy, p.keep_ratios_3d, p.keep_ratio_bev) for p in only_bev] == [("random", [0.6], 0.5)]
    only_3d = sweep(Runner(KeepRatioModel()), config(), [0.5, 0.3], ["predictor"], "same", ratio_bev="fixed")
    assert [(p.keep_ratios_3d, p.keep_ratio_bev) for p in only_3d] == [([0.5], 0.75), ([0.3], 0.75)]
    assert [p.bev_kept_of_grid for p in only_3d] == pytest.approx([0.4, 0.4])  # 8 of the 20 cells each time


def test_a_sweep_with_nothing_to_vary_is_refused():
    with pytest.raises(ValueError, match="ada3d-input_stage3.py: with the BEV ratio fixed .* ratios_3d='fixed'"):
        sweep(Runner(KeepRatioModel()), config(), [0.5], ["predictor"], "fixed", ratio_bev="fixed")
    with pytest.raises(ValueError, match="0 3D drop stages"):
        sweep(Runner(KeepRatioModel()), config(()), [0.5], ["predictor"], "same", ratio_bev="fixed")
