"""Ground-truth centre heatmaps on the importance grid: the target of Ada3D's importance predictor."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.structures import points_in_boxes


def gaussian_radius(length: torch.Tensor, width: torch.Tensor, min_overlap: float) -> torch.Tensor:
    """CenterPoint's Gaussian radius (CornerNet's formula as used by mmdet3d) for boxes of a BEV size.

    The smallest of the three radii that keep a shifted box's IoU with the original above ``min_overlap``
    (both corners shifted inward, outward, or one each), with mmdet3d's ``(b + sqrt(b^2 - 4ac)) / 2`` roots.

    Args:
        length, width: ``[M]`` box extents in cells.
        min_overlap: the IoU the radius preserves, in ``(0, 1)``.

    Returns:
        ``[M]`` radii in cells (real-valued; callers truncate).
    """
    size_sum = length + width
    area = length * width
    b1 = size_sum
    c1 = area * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * size_sum
    c2 = (1 - min_overlap) * area
    r2 = (b2 + torch.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * size_sum
    c3 = (min_overlap - 1) * area
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def centre_heatmap(
    gt_bboxes: Sequence[torch.Tensor],
    grid: BevGrid,
    min_radius: int = 2,
    min_overlap: float = 0.1,
) -> torch.Tensor:
    """A class-agnostic CenterPoint heatmap of the box centres of each sample.

    For every box with a positive BEV size whose centre lies inside the grid: ``l`` and ``w`` in cells
    (``l / cell_x``, ``w / cell_y``, yaw ignored as in CenterPoint), radius
    ``r = max(min_radius, int(gaussian_radius(l, w, min_overlap)))``, and the Gaussian
    ``exp(-(dx^2 + dy^2) / (2 sigma^2))`` with ``sigma = (2r + 1) / 6`` over the ``(2r + 1)^2`` cells around the
    box's centre cell (``floor((x - x_min) / cell_x)``, same in y), cut at the grid border. The peak is 1 at the
    centre cell; overlapping boxes take the maximum. Boxes whose centre lies outside the grid are skipped.

    Args:
        gt_bboxes: per sample a ``[M_i, 7+]`` tensor of LiDAR boxes ``(x, y, z, l, w, h, yaw)`` in metres.
        grid: the importance grid.
        min_radius: smallest radius in cells (CenterPoint: 2).
        min_overlap: IoU the radius preserves (CenterPoint's ``gaussian_overlap``: 0.1).

    Returns:
        ``[B, 1, H, W]`` float32 heatmap in ``[0, 1]``, on the boxes' device.
    """
    if len(gt_bboxes) == 0:
        raise ValueError("centre_heatmap needs one box tensor per sample, got an empty list")
    for i, boxes in enumerate(gt_bboxes):
        if boxes.dim() != 2 or boxes.shape[1] < 7:
            raise ValueError(f"gt_bboxes[{i}] must be [M, 7] (x, y, z, l, w, h, yaw), got shape {tuple(boxes.shape)}")
    device = gt_bboxes[0].device
    batch, height, width = len(gt_bboxes), grid.height, grid.width
    heatmap = torch.zeros(batch * height * width, device=device)
    boxes = torch.cat([b[:, :7].to(device=device, dtype=torch.float32) for b in gt_bboxes])
    sample = torch.repeat_interleave(
        torch.arange(batch, device=device), torch.tensor([b.shape[0] for b in gt_bboxes], device=device)
    )
    length_cells = boxes[:, 3] / grid.cell_x
    width_cells = boxes[:, 4] / grid.cell_y
    centres, inside = grid.cell_of(boxes[:, :2])
    valid = inside & (length_cells > 0) & (width_cells > 0)
    centres, sample = centres[valid], sample[valid]
    radius = gaussian_radius(length_cells[valid], width_cells[valid], min_overlap).long().clamp(min=min_radius)
    if radius.numel() == 0:
        return heatmap.view(batch, 1, height, width)

    # every box evaluates the window of the largest radius; cells beyond its own radius are masked out
    reach = int(radius.max())
    steps = torch.arange(-reach, reach + 1, device=device)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")
    dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)  # [1, K]
    sigma = (2 * radius.float() + 1) / 6
    values = torch.exp(-(dx**2 + dy**2).float() / (2 * sigma[:, None] ** 2))  # [M, K]
    rows = centres[:, :1] + dy
    cols = centres[:, 1:] + dx
    within = (dy.abs() <= radius[:, None]) & (dx.abs() <= radius[:, None])
    within &= (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    flat = (sample[:, None] * height + rows) * width + cols
    heatmap.scatter_reduce_(0, flat[within], values[within], reduce="amax", include_self=True)
    return heatmap.view(batch, 1, height, width)


def box_footprints(gt_bboxes: Sequence[torch.Tensor], grid: BevGrid) -> torch.Tensor:
    """Which importance-grid cells have their centre inside a box seen from above (yaw included).

    Args:
        gt_bboxes: per sample a ``[M_i, 7+]`` tensor of LiDAR boxes ``(x, y, z, l, w, h, yaw)`` in metres.
        grid: the importance grid.

    Returns:
        ``[B, 1, H, W]`` bool, on the boxes' device.
    """
    device = gt_bboxes[0].device if len(gt_bboxes) else torch.device("cpu")
    centres = grid.cell_centres(device=device, dtype=torch.float64).reshape(-1, 2)  # [H * W, (x, y)]
    cells = torch.cat([centres, torch.zeros_like(centres[:, :1])], dim=1)  # at z = 0
    masks = []
    for boxes in gt_bboxes:
        flat = boxes[:, :7].to(device=device, dtype=torch.float64).clone()
        flat[:, 2], flat[:, 5] = -1.0, 2.0  # every box spans z = 0: only x, y, l, w and yaw decide
        masks.append(points_in_boxes(cells, flat).any(dim=1).view(1, grid.height, grid.width))
    return torch.stack(masks)


def importance_target(gt_bboxes: Sequence[torch.Tensor], grid: BevGrid, footprint_floor: float = 0.0) -> torch.Tensor:
    """The importance predictor's target: :func:`centre_heatmap`, raised to at least ``footprint_floor`` on the
    cells inside a box's footprint (:func:`box_footprints`).

    ``footprint_floor = 0`` is Ada3D's target, the centre heatmap alone; it is ~0 two or three cells from a car's
    centre (0.4 m cells), where the LiDAR returns of its sides lie, so those cells rank with the background. A
    floor makes every object cell outrank empty road.

    Returns:
        ``[B, 1, H, W]`` float32 in ``[0, 1]``.
    """
    if not 0.0 <= footprint_floor <= 1.0:
        raise ValueError(f"footprint_floor must lie in [0, 1], got {footprint_floor}")
    heatmap = centre_heatmap(gt_bboxes, grid)
    if footprint_floor == 0.0:
        return heatmap
    return torch.where(box_footprints(gt_bboxes, grid), heatmap.clamp(min=footprint_floor), heatmap)
