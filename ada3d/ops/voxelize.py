"""Voxelisation in torch, the same on CPU and GPU.

Two flavours, both with the grid convention of mmcv / OpenPCDet: a point ``p`` falls in cell
``floor((p - range_min) / voxel_size)``; points outside ``[x0, x1) x [y0, y1) x [z0, z1)`` belong to no voxel;
coordinates are ``(z, y, x)``.

* :func:`hard_voxelize`: points grouped per voxel, at most ``max_points`` per voxel and ``max_voxels`` voxels
  (fixed-size tensors for :class:`~ada3d.models.voxel_encoders.HardSimpleVFE`).
* :func:`dynamic_voxelize`: only the voxel coordinate of every point, every point kept
  (for :class:`~ada3d.models.voxel_encoders.DynamicSimpleVFE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch


class Voxels(NamedTuple):
    """The result of :func:`hard_voxelize`.

    Attributes:
        points: ``[M, max_points, C]`` points per voxel, zero-padded after ``num_points[m]`` rows.
        coords: ``[M, 3]`` int32 voxel coordinates ``(z, y, x)``.
        num_points: ``[M]`` int32 number of points kept in each voxel (1..max_points).
    """

    points: torch.Tensor
    coords: torch.Tensor
    num_points: torch.Tensor


def grid_shape(voxel_size: Sequence[float], point_cloud_range: Sequence[float]) -> tuple[int, int, int]:
    """Grid extents ``(z, y, x)`` of ``point_cloud_range`` ``[x0, y0, z0, x1, y1, z1]`` (metres) in voxels."""
    return tuple(
        int(round((point_cloud_range[axis + 3] - point_cloud_range[axis]) / voxel_size[axis])) for axis in (2, 1, 0)
    )


def _point_cells(
    points: torch.Tensor, voxel_size: Sequence[float], point_cloud_range: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxel cell ``(z, y, x)`` (long ``[N, 3]``) of every point and whether it lies in the grid (bool ``[N]``)."""
    if points.dim() != 2 or points.shape[1] < 3:
        raise ValueError(f"points must be [N, C>=3] with x, y, z first, got shape {tuple(points.shape)}")
    if len(voxel_size) != 3 or len(point_cloud_range) != 6:
        raise ValueError(
            f"voxel_size needs 3 values and point_cloud_range 6, got {list(voxel_size)} and {list(point_cloud_range)}"
        )
    device = points.device
    shape_zyx = grid_shape(voxel_size, point_cloud_range)
    lower = torch.tensor(point_cloud_range[:3], dtype=points.dtype, device=device)
    size = torch.tensor(voxel_size, dtype=points.dtype, device=device)
    cell_xyz = torch.floor((points[:, :3] - lower) / size).long()
    inside = ((cell_xyz >= 0) & (cell_xyz < torch.tensor(shape_zyx[::-1], device=device))).all(dim=1)
    inside &= torch.isfinite(points[:, :3]).all(dim=1)  # NaN -> long is undefined; never trust its cell
    return cell_xyz.flip(1), inside


def dynamic_voxelize(
    points: torch.Tensor, voxel_size: Sequence[float], point_cloud_range: Sequence[float]
) -> torch.Tensor:
    """Voxel coordinate of every point.

    Args:
        points: ``[N, C]`` points, columns ``x, y, z`` (metres) first.
        voxel_size: ``(dx, dy, dz)`` in metres.
        point_cloud_range: ``[x0, y0, z0, x1, y1, z1]`` in metres.

    Returns:
        ``[N, 3]`` int32 ``(z, y, x)`` on the device of ``points``; ``(-1, -1, -1)`` for points outside the range
        (NaN coordinates count as outside).
    """
    cells, inside = _point_cells(points, voxel_size, point_cloud_range)
    return torch.where(inside.unsqueeze(1), cells, torch.full_like(cells, -1)).int()


def hard_voxelize(
    points: torch.Tensor,
    voxel_size: Sequence[float],
    point_cloud_range: Sequence[float],
    max_points: int,
    max_voxels: int,
) -> Voxels:
    """Group points into voxels, keeping at most ``max_points`` per voxel and ``max_voxels`` voxels.

    Matches the usual hard-voxelisation semantics (mmcv / OpenPCDet): points outside
    ``[x0, x1) x [y0, y1) x [z0, z1)`` are skipped; voxels are ordered by their first point; each keeps
    its first ``max_points`` points in input order; voxels beyond ``max_voxels`` are dropped.

    Args:
        points: ``[N, C]`` points, columns ``x, y, z`` (metres) first.
        voxel_size: ``(dx, dy, dz)`` in metres.
        point_cloud_range: ``[x0, y0, z0, x1, y1, z1]`` in metres.
        max_points / max_voxels: caps, both >= 1.

    Returns:
        :class:`Voxels` on the device of ``points``.
    """
    if max_points < 1 or max_voxels < 1:
        raise ValueError(f"max_points and max_voxels must be >= 1, got {max_points} and {max_voxels}")
    device = points.device
    cells, inside = _point_cells(points, voxel_size, point_cloud_range)
    shape_zyx = grid_shape(voxel_size, point_cloud_range)
    point_rows = inside.nonzero().squeeze(1)
    cell_zyx = cells[point_rows]
    keys = (cell_zyx[:, 0] * shape_zyx[1] + cell_zyx[:, 1]) * shape_zyx[2] + cell_zyx[:, 2]

    unique_keys, voxel_of_point = torch.unique(keys, return_inverse=True)
    order = torch.arange(len(keys), device=device)
    first_point = torch.full((len(unique_keys),), len(keys), dtype=torch.long, device=device)
    first_point.scatter_reduce_(0, voxel_of_point, order, reduce="amin")
    voxel_order = torch.argsort(first_point)[:max_voxels]  # voxels by first appearance
    rank_of_voxel = torch.full_like(first_point, max_voxels)
    rank_of_voxel[voxel_order] = torch.arange(len(voxel_order), device=device)

    voxel_rank = rank_of_voxel[voxel_of_point]
    by_voxel = torch.argsort(voxel_rank * len(keys) + order)  # points grouped by voxel, input order within
    sorted_rank = voxel_rank[by_voxel]
    group_start = torch.searchsorted(sorted_rank, sorted_rank, right=False)
    slot = torch.arange(len(keys), device=device) - group_start
    keep = (slot < max_points) & (sorted_rank < max_voxels)
    rank, slot, source = sorted_rank[keep], slot[keep], point_rows[by_voxel[keep]]

    num_voxels = len(voxel_order)
    voxels = points.new_zeros((num_voxels, max_points, points.shape[1]))
    voxels[rank, slot] = points[source]
    num_points = torch.bincount(rank, minlength=num_voxels).int()
    coords = cell_zyx[first_point[voxel_order]].int() if num_voxels else cell_zyx.new_zeros((0, 3)).int()
    return Voxels(voxels, coords, num_points)
