"""Drop-stage counts: ratios, summing, ground-truth cells of the importance grid."""

from __future__ import annotations

import math

import pytest
import torch

from ada3d.benchmark.pruning_stats import (
    StageCounts,
    centres_with_features,
    dense_bev_counts,
    record_counts,
    stage_counts,
)
from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.heatmap import box_footprints
from ada3d.models.adaptive.pruning_record import PruningRecord

TINY_GRID = dict(point_cloud_range=(0, -40, -3, 70.4, 40, 1), voxel_size=(0.1, 0.1, 0.2), sparse_shape=(21, 800, 704))


def importance_grid(grid_shape) -> BevGrid:
    """The benchmark's importance grid of the tiny SECOND (as ``ada3d_bench.gt_cell_masks`` builds it)."""
    return BevGrid.from_voxel_grid(**TINY_GRID, out_spatial_shape=grid_shape)


def cells_in_boxes(boxes: torch.Tensor) -> torch.Tensor:
    return box_footprints([boxes], importance_grid((100, 88)))[0, 0]


def test_cell_centres_of_the_tiny_second_grid():
    centres = importance_grid((100, 88)).cell_centres(dtype=torch.float64)  # stride 8: 0.8 m cells
    assert centres.shape == (100, 88, 2)
    assert centres[0, 0].tolist() == pytest.approx([0.4, -39.6])
    assert centres[99, 87].tolist() == pytest.approx([70.0, 39.6])
    assert centres[10, 3].tolist() == pytest.approx([3 * 0.8 + 0.4, -40 + 10 * 0.8 + 0.4])


def test_cells_in_boxes_use_the_rotated_footprint_only():
    # a 4 m x 1.6 m car along x at (10, 0) covers 5 x 2 cells; high above the ground, which does not matter
    along_x = torch.tensor([[10.0, 0.0, 5.0, 4.0, 1.6, 1.5, 0.0]])
    inside = cells_in_boxes(along_x)
    assert inside.sum() == 10 and inside[49:51, 10:15].all()
    # turned by 90 degrees at (10.4, 0.2): x in [9.6, 11.2], y in [-1.8, 2.2]
    across = cells_in_boxes(torch.tensor([[10.4, 0.2, 0.0, 4.0, 1.6, 1.5, math.pi / 2]]))
    assert across.sum() == 10 and across[48:53, 12:14].all()
    assert not cells_in_boxes(torch.zeros(0, 7)).any()


def test_stage_counts_ratios_and_sums():
    occupied = torch.zeros(2, 3, 4, dtype=torch.bool)
    occupied[0, 0, :] = True  # 4 occupied cells in sample 0
    occupied[1, 1, :2] = True  # 2 in sample 1
    kept = occupied.clone()
    kept[0, 0, 3] = False
    gt = torch.zeros_like(occupied)
    gt[0, 0, 2:] = True  # 2 occupied GT cells, one of them dropped
    gt[1, 2, 0] = True  # a GT cell without points: not counted
    counts = stage_counts("bev", occupied, kept, [40, 20], [30, 20], gt)
    assert (counts.occupied, counts.kept, counts.grid_cells, counts.gt_occupied, counts.gt_dropped) == (6, 5, 24, 2, 1)
    assert counts.sites_kept == pytest.approx(50 / 60) and counts.kept_of_occupied == pytest.approx(5 / 6)
    assert counts.kept_of_grid == pytest.approx(5 / 24) and counts.occupied_of_grid == pytest.approx(6 / 24)
    assert counts.gt_dropped_fraction == 0.5
    total = counts + counts
    assert total.kept == 10 and total.kept_of_occupied == counts.kept_of_occupied
    with pytest.raises(ValueError, match="cannot add the counts of stage 'encoder_layer2'"):
        counts + StageCounts("encoder_layer2", 0, 0, 0, 0, 0, 0, 0)
    with pytest.raises(ValueError, match=r"masks of one \[B, H, W\] grid"):
        stage_counts("bev", occupied, kept, [0], [0], gt[:1])
    assert math.isnan(stage_counts("bev", occupied, kept, [0, 0], [0, 0], torch.zeros_like(gt)).gt_dropped_fraction)


def test_stage_counts_per_class():
    occupied = torch.ones(1, 2, 3, dtype=torch.bool)
    kept = torch.tensor([[[True, False, True], [False, True, True]]])
    pedestrian = torch.zeros_like(occupied)
    pedestrian[0, 0, :2] = True  # two cells, one dropped
    car = torch.zeros_like(occupied)
    car[0, 1, 1:] = True  # two cells, both kept
    empty = torch.zeros_like(occupied)
    counts = stage_counts("input", occupied, kept, [6], [3], pedestrian | car, [pedestrian, empty, car])
    assert (counts.gt_occupied, counts.gt_dropped) == (4, 1)
    assert counts.gt_occupied_by_class == (2, 0, 2) and counts.gt_dropped_by_class == (1, 0, 0)
    shares = counts.gt_dropped_fraction_by_class
    assert shares[0] == 0.5 and math.isnan(shares[1]) and shares[2] == 0.0
    total = counts + counts
    assert total.gt_occupied_by_class == (4, 0, 4) and total.gt_dropped_by_class == (2, 0, 0)
    unclassed = stage_counts("input", occupied, kept, [6], [3], pedestrian | car)
    assert unclassed.gt_occupied_by_class == () and unclassed.gt_dropped_fraction_by_class == ()
    with pytest.raises(ValueError, match="cannot add counts of 0 classes to counts of 3"):
        counts + unclassed
    with pytest.raises(ValueError, match=r"class 1's cells \(2, 2, 3\) must be masks of one \[B, H, W\] grid"):
        stage_counts("input", occupied, kept, [6], [3], car, [car, torch.zeros(2, 2, 3, dtype=torch.bool)])


def test_records_and_dense_maps_count_alike():
    bev = torch.zeros(1, 2, 3, 3)
    bev[0, 1, 0, 0] = bev[0, 0, 2, 1] = 1.0
    occupied = (bev != 0).any(dim=1)
    sites = torch.tensor([2])
    record = PruningRecord("bev", None, occupied, occupied.clone(), torch.zeros(1, 3, 3), sites, sites)
    gt = torch.ones_like(occupied)
    assert record_counts(record, gt) == dense_bev_counts(bev, gt)
    assert dense_bev_counts(bev, gt).gt_dropped == 0 and dense_bev_counts(bev, gt).sites_after == 2


def test_centres_with_features_counts_per_stage_the_boxes_whose_centre_pixel_is_non_zero():
    # a 4 m x 4 m range: stage 1 on 4 x 8 pixels (rows y: 1 m, cols x: 0.5 m), stage 2 on 2 x 4
    point_cloud_range = (0.0, -2.0, -3.0, 4.0, 2.0, 1.0)
    stage1, stage2 = torch.zeros(2, 3, 4, 8), torch.zeros(2, 5, 2, 4)
    stage1[0, 1, 2, 5] = 0.5  # sample 0: pixel (row 2, col 5) active in one channel
    stage1[1, 2, 0, 0] = -1.0  # sample 1: pixel (0, 0); a negative feature is a feature too
    stage2[0, :, 1, 2] = 1.0  # sample 0: the coarse pixel (1, 2) holds (2, 5) of stage 1
    box = [-1.0, 4.0, 1.8, 1.5, 0.3]
    boxes = [
        torch.tensor([[2.7, 0.5, *box], [0.2, -1.5, *box], [9.0, 0.0, *box]]),  # (2, 5); (0, 0); outside the range
        torch.tensor([[0.2, -1.5, *box]]),  # (0, 0)
    ]
    assert centres_with_features([stage1, stage2], boxes, point_cloud_range) == ([2, 1], 3)
    empty = [torch.zeros(0, 7), torch.zeros(0, 7)]
    assert centres_with_features([stage1, stage2], empty, point_cloud_range) == ([0, 0], 0)
