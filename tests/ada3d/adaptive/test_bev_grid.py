"""BevGrid: construction from a model config, cell centres, the cell of a point."""

from __future__ import annotations

import pytest
import torch

from ada3d.models.adaptive.bev_grid import BevGrid, downsample_factors

KITTI_RANGE = [0, -40, -3, 70.4, 40, 1]
KITTI_VOXEL = [0.05, 0.05, 0.1]


def test_second_kitti_grid_has_0_4_m_cells():
    grid = BevGrid.from_voxel_grid(KITTI_RANGE, KITTI_VOXEL, (41, 1600, 1408), (2, 200, 176))
    assert grid == BevGrid(x_min=0.0, y_min=-40.0, cell_x=0.4, cell_y=0.4, height=200, width=176)
    assert grid.shape == (200, 176)


@pytest.mark.parametrize(
    ("fine", "coarse", "factors"),
    [
        ((1600, 1408), (200, 176), (8, 8)),
        ((1601, 1407), (201, 176), (8, 8)),
        ((800, 704), (200, 176), (4, 4)),
        ((200, 176), (200, 176), (1, 1)),
        ((1440, 1440), (180, 180), (8, 8)),
        ((13, 7), (4, 1), (4, 7)),
        ((10,), (2,), (5,)),
        ((800, 704), (100, 88), (8, 8)),
    ],
)
def test_downsample_factors_follow_ceil_division(fine, coarse, factors):
    assert downsample_factors(fine, coarse) == factors


@pytest.mark.parametrize(
    ("fine", "coarse", "message"),
    [
        ((1600,), (300,), "not an integer downsampling"),
        ((100,), (200,), "not a downsampling"),
        ((10, 10), (5,), "different numbers of axes"),
    ],
)
def test_unrelated_grids_are_refused(fine, coarse, message):
    with pytest.raises(ValueError, match=message):
        downsample_factors(fine, coarse)


def test_cell_centres_are_half_a_cell_from_the_corner():
    grid = BevGrid(x_min=0.0, y_min=-2.0, cell_x=0.5, cell_y=1.0, height=4, width=3)
    centres = grid.cell_centres()
    assert centres.shape == (4, 3, 2)
    assert torch.allclose(centres[0, 0], torch.tensor([0.25, -1.5]))
    assert torch.allclose(centres[3, 2], torch.tensor([1.25, 1.5]))
    assert torch.allclose(centres[2, 1], torch.tensor([0.75, 0.5]))


def test_cell_of_inverts_cell_centres_and_flags_outside_points():
    grid = BevGrid(x_min=0.0, y_min=-2.0, cell_x=0.5, cell_y=1.0, height=4, width=3)
    cells, inside = grid.cell_of(grid.cell_centres().reshape(-1, 2))
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(3), indexing="ij")
    assert torch.equal(cells, torch.stack((rows.reshape(-1), cols.reshape(-1)), dim=1))
    assert inside.all()
    cells, inside = grid.cell_of(torch.tensor([[-0.1, 0.0], [1.5, 0.0], [0.2, 2.0], [0.2, -2.0]]))
    assert inside.tolist() == [False, False, False, True]
    assert cells.tolist() == [[2, 0], [2, 2], [3, 0], [0, 0]]


def test_bad_grids_fail_loudly():
    with pytest.raises(ValueError, match="cell sizes"):
        BevGrid(0.0, 0.0, 0.0, 1.0, 2, 2)
    with pytest.raises(ValueError, match="point_cloud_range"):
        BevGrid.from_voxel_grid([0, 0, 70, 40], KITTI_VOXEL, (41, 1600, 1408), (2, 200, 176))
