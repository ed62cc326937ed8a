"""The importance grid: the bird's-eye-view grid that Ada3D's predictor scores and its spatial filter masks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


def downsample_factors(fine_shape: Sequence[int], coarse_shape: Sequence[int]) -> tuple[int, ...]:
    """Per axis, the integer factor ``r`` that takes ``fine_shape`` to ``coarse_shape``.

    A stack of stride-2 convolutions with kernel 3 and padding 1 maps an extent ``n`` to ``ceil(n / 2)``, so a grid
    reached by total stride ``r`` has extent ``ceil(n / r)`` and the fine site ``i`` lies in the coarse cell
    ``i // r``. This returns the smallest ``r`` with ``ceil(fine / r) == coarse``: for SECOND on KITTI,
    ``(1600, 1408) -> (200, 176)`` and ``(1601, 1407) -> (201, 176)`` both give ``(8, 8)``. It is the true stride
    whenever ``r`` divides ``fine`` or the coarse axis has at least ``r`` cells; on tinier grids several factors fit
    (``ceil(10 / r) == 2`` for ``r = 5 ... 9``) and callers must pass the true one themselves.

    Args:
        fine_shape: extents of the finer grid, e.g. ``(y, x)`` of an encoder stage.
        coarse_shape: extents of the coarser grid (same number of axes).

    Raises:
        ValueError: if the lengths differ, the coarse grid is finer than the fine one, or no integer factor
            relates two extents.
    """
    if len(fine_shape) != len(coarse_shape):
        raise ValueError(f"grid shapes {tuple(fine_shape)} and {tuple(coarse_shape)} have different numbers of axes")
    factors = []
    for fine, coarse in zip(fine_shape, coarse_shape):
        if coarse < 1 or fine < coarse:
            raise ValueError(f"grid {tuple(coarse_shape)} is not a downsampling of grid {tuple(fine_shape)}")
        factor = -(-fine // coarse)  # the smallest r with ceil(fine / r) <= coarse
        if -(-fine // factor) != coarse:
            raise ValueError(
                f"grid {tuple(coarse_shape)} is not an integer downsampling of grid {tuple(fine_shape)}: "
                f"no factor r gives ceil({fine} / r) == {coarse}"
            )
        factors.append(factor)
    return tuple(factors)


@dataclass(frozen=True)
class BevGrid:
    """A bird's-eye-view grid in the LiDAR frame: rows along y, columns along x.

    Cell ``(row, col)`` covers ``x in [x_min + col * cell_x, x_min + (col + 1) * cell_x)`` and the matching
    interval in y. Maps on this grid are ``[B, H, W]`` or ``[B, 1, H, W]`` with ``H = height``, ``W = width``.

    Attributes:
        x_min, y_min: the grid's corner in metres (``point_cloud_range[:2]``).
        cell_x, cell_y: cell size in metres.
        height, width: number of rows (y) and columns (x).
    """

    x_min: float
    y_min: float
    cell_x: float
    cell_y: float
    height: int
    width: int

    def __post_init__(self) -> None:
        if not (self.cell_x > 0 and self.cell_y > 0):
            raise ValueError(f"BevGrid cell sizes must be positive, got cell_x={self.cell_x}, cell_y={self.cell_y}")
        if self.height < 1 or self.width < 1:
            raise ValueError(f"BevGrid needs at least one cell, got height={self.height}, width={self.width}")

    @classmethod
    def from_voxel_grid(
        cls,
        point_cloud_range: Sequence[float],
        voxel_size: Sequence[float],
        sparse_shape: Sequence[int],
        out_spatial_shape: Sequence[int],
    ) -> BevGrid:
        """The grid of a sparse encoder's output, from the model config.

        Args:
            point_cloud_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` metres.
            voxel_size: ``[x, y, z]`` metres.
            sparse_shape: the voxel grid, ``(z, y, x)`` (or ``(y, x)``).
            out_spatial_shape: the encoder's output grid, ``(z, y, x)`` (or ``(y, x)``), e.g.
                ``SparseEncoder.out_spatial_shape``.

        The cell size is ``voxel_size[:2]`` times the integer downsampling factor between the two grids
        (:func:`downsample_factors`): 0.4 m for SECOND on KITTI (0.05 m voxels, stride 8).
        """
        if len(point_cloud_range) != 6 or len(voxel_size) != 3:
            raise ValueError(
                f"point_cloud_range needs 6 values and voxel_size 3, got {list(point_cloud_range)} and "
                f"{list(voxel_size)}"
            )
        fine_yx = tuple(int(s) for s in sparse_shape)[-2:]
        coarse_yx = tuple(int(s) for s in out_spatial_shape)[-2:]
        factor_y, factor_x = downsample_factors(fine_yx, coarse_yx)
        return cls(
            x_min=float(point_cloud_range[0]),
            y_min=float(point_cloud_range[1]),
            cell_x=float(voxel_size[0]) * factor_x,
            cell_y=float(voxel_size[1]) * factor_y,
            height=coarse_yx[0],
            width=coarse_yx[1],
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (self.height, self.width)

    def cell_centres(
        self, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """``[H, W, 2]`` centre ``(x, y)`` of every cell, metres."""
        xs = self.x_min + (torch.arange(self.width, device=device, dtype=torch.float64) + 0.5) * self.cell_x
        ys = self.y_min + (torch.arange(self.height, device=device, dtype=torch.float64) + 0.5) * self.cell_y
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack((grid_x, grid_y), dim=-1).to(dtype)

    def cell_of(self, xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The cell holding each point.

        Args:
            xy: ``[N, 2]`` ``(x, y)`` positions, metres.

        Returns:
            ``cells``: ``[N, 2]`` int64 ``(row, col)``, clipped into the grid;
            ``inside``: ``[N]`` bool, whether the point lies inside the grid (unclipped cell valid).
        """
        if xy.dim() != 2 or xy.shape[1] != 2:
            raise ValueError(f"cell_of needs [N, 2] (x, y) positions, got shape {tuple(xy.shape)}")
        xy = xy.double()
        cols = torch.floor((xy[:, 0] - self.x_min) / self.cell_x).long()
        rows = torch.floor((xy[:, 1] - self.y_min) / self.cell_y).long()
        inside = (rows >= 0) & (rows < self.height) & (cols >= 0) & (cols < self.width)
        cells = torch.stack((rows.clamp(0, self.height - 1), cols.clamp(0, self.width - 1)), dim=1)
        return cells, inside
