"""centre_heatmap: CenterPoint's Gaussians at the box centres, against a box-by-box reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.heatmap import box_footprints, centre_heatmap, importance_target

GRID = BevGrid(x_min=0.0, y_min=-20.0, cell_x=0.4, cell_y=0.4, height=100, width=88)


def reference_radius(height: float, width: float, min_overlap: float) -> float:
    """CornerNet's three quadratic roots as mmdet3d writes them, one box at a time."""
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def reference_heatmap(boxes: np.ndarray, grid: BevGrid, min_radius: int, min_overlap: float) -> np.ndarray:
    """Draw each box's full Gaussian patch in float64 and take the maximum, cell by cell."""
    heatmap = np.zeros((grid.height, grid.width))
    for x, y, _, length, width, *_ in boxes:
        col, row = math.floor((x - grid.x_min) / grid.cell_x), math.floor((y - grid.y_min) / grid.cell_y)
        if not (0 <= row < grid.height and 0 <= col < grid.width) or length <= 0 or width <= 0:
            continue
        radius = max(min_radius, int(reference_radius(length / grid.cell_x, width / grid.cell_y, min_overlap)))
        sigma = (2 * radius + 1) / 6
        for dy in range(-radius, radius + 1):
            for dx in range(-radius, radius + 1):
                r, c = row + dy, col + dx
                if 0 <= r < grid.height and 0 <= c < grid.width:
                    heatmap[r, c] = max(heatmap[r, c], math.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma)))
    return heatmap


def random_boxes(generator: torch.Generator, count: int) -> torch.Tensor:
    centres = torch.rand(count, 2, generator=generator) * torch.tensor([40.0, 44.0]) + torch.tensor([-2.0, -22.0])
    sizes = torch.rand(count, 3, generator=generator) * torch.tensor([14.0, 4.0, 2.0]) + 0.3
    yaw = torch.rand(count, 1, generator=generator) * 6.28
    return torch.cat([centres, torch.zeros(count, 1), sizes, yaw], dim=1)


def test_matches_the_reference_on_random_boxes_with_overlaps_borders_and_outside_centres():
    generator = torch.Generator().manual_seed(0)
    gt_bboxes = [random_boxes(generator, 30), random_boxes(generator, 5), torch.zeros(0, 7)]
    heatmap = centre_heatmap(gt_bboxes, GRID)
    assert heatmap.shape == (3, 1, GRID.height, GRID.width) and heatmap.dtype == torch.float32
    for sample, boxes in enumerate(gt_bboxes):
        expected = reference_heatmap(boxes.double().numpy(), GRID, min_radius=2, min_overlap=0.1)
        np.testing.assert_allclose(heatmap[sample, 0].numpy(), expected, atol=1e-6)
    assert heatmap[2].abs().sum() == 0


@pytest.mark.parametrize(("min_radius", "min_overlap"), [(1, 0.3), (4, 0.1)])
def test_radius_parameters_are_honoured(min_radius, min_overlap):
    boxes = random_boxes(torch.Generator().manual_seed(1), 12)
    heatmap = centre_heatmap([boxes], GRID, min_radius=min_radius, min_overlap=min_overlap)
    expected = reference_heatmap(boxes.double().numpy(), GRID, min_radius, min_overlap)
    np.testing.assert_allclose(heatmap[0, 0].numpy(), expected, atol=1e-6)


def test_each_box_peaks_at_one_in_its_centre_cell():
    boxes = torch.tensor([[5.1, -3.3, -1.0, 4.0, 1.8, 1.5, 0.3], [25.0, 10.0, -1.0, 0.8, 0.6, 1.7, 0.0]])
    heatmap = centre_heatmap([boxes], GRID)[0, 0]
    cells, inside = GRID.cell_of(boxes[:, :2])
    assert inside.all()
    for row, col in cells.tolist():
        assert heatmap[row, col] == 1.0
    assert heatmap.max() == 1.0
    assert int((heatmap == 1.0).sum()) == 2
    # a car 4 m x 1.8 m on 0.4 m cells gets the minimum radius 2: a 5 x 5 patch
    row, col = cells[0].tolist()
    assert (heatmap[row - 2 : row + 3, col - 2 : col + 3] > 0).all()
    assert heatmap[row, col + 3] == 0 and heatmap[row + 3, col] == 0


def test_no_boxes_and_boxes_outside_the_grid_give_zeros():
    outside = torch.tensor([[-1.0, 0.0, 0.0, 4.0, 2.0, 1.5, 0.0], [10.0, 21.0, 0.0, 4.0, 2.0, 1.5, 0.0]])
    heatmap = centre_heatmap([torch.zeros(0, 7), outside], GRID)
    assert heatmap.shape == (2, 1, GRID.height, GRID.width)
    assert heatmap.abs().sum() == 0


def test_bad_box_tensors_fail_loudly():
    with pytest.raises(ValueError, match=r"gt_bboxes\[1\] must be \[M, 7\]"):
        centre_heatmap([torch.zeros(0, 7), torch.zeros(3, 4)], GRID)
    with pytest.raises(ValueError, match="one box tensor per sample"):
        centre_heatmap([], GRID)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    boxes = random_boxes(torch.Generator().manual_seed(2), 40)
    torch.testing.assert_close(centre_heatmap([boxes.cuda()], GRID).cpu(), centre_heatmap([boxes], GRID))


def reference_footprint(boxes: np.ndarray, grid: BevGrid) -> np.ndarray:
    """Cell by cell: the cell centre in the box's own frame lies within half its length and width."""
    mask = np.zeros((grid.height, grid.width), dtype=bool)
    for x, y, _, length, width, _, yaw in boxes[:, :7]:
        for row in range(grid.height):
            for col in range(grid.width):
                dx = grid.x_min + (col + 0.5) * grid.cell_x - x
                dy = grid.y_min + (row + 0.5) * grid.cell_y - y
                along, across = dx * math.cos(yaw) + dy * math.sin(yaw), -dx * math.sin(yaw) + dy * math.cos(yaw)
                mask[row, col] |= abs(along) <= length / 2 and abs(across) <= width / 2
    return mask


def test_footprints_match_a_cell_by_cell_reference():
    generator = torch.Generator().manual_seed(3)
    gt_bboxes = [random_boxes(generator, 6), torch.zeros(0, 7)]
    footprints = box_footprints(gt_bboxes, GRID)
    assert footprints.shape == (2, 1, GRID.height, GRID.width) and footprints.dtype == torch.bool
    expected = reference_footprint(gt_bboxes[0].double().numpy(), GRID)
    assert expected.sum() > 200
    np.testing.assert_array_equal(footprints[0, 0].numpy(), expected)
    assert not footprints[1].any()


def test_importance_target_raises_the_footprint_to_the_floor_and_keeps_the_centre_heatmap():
    boxes = random_boxes(torch.Generator().manual_seed(4), 8)
    heatmap = centre_heatmap([boxes], GRID)
    assert torch.equal(importance_target([boxes], GRID), heatmap)  # floor 0: Ada3D's target
    target = importance_target([boxes], GRID, footprint_floor=0.4)
    inside = box_footprints([boxes], GRID)
    assert torch.equal(target[~inside], heatmap[~inside])
    assert torch.equal(target[inside], heatmap[inside].clamp(min=0.4))
    assert (heatmap[inside] < 0.4).float().mean() > 0.5  # most of a box's cells are far from its centre
    with pytest.raises(ValueError, match="footprint_floor must lie in"):
        importance_target([boxes], GRID, footprint_floor=1.5)
