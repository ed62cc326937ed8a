"""Sparse tensors against the importance grid: pool features to it, read occupancy, drop columns / pixels.

A site ``(b, [z,] y, x)`` of a sparse tensor whose ``(y, x)`` grid relates to the importance grid ``[H, W]`` by
the integer factors ``(r_y, r_x)`` of :func:`~ada3d.models.adaptive.bev_grid.downsample_factors` (``8 / s`` for a
SECOND stage at stride ``s``) lies in the importance cell ``(y // r_y, x // r_x)``. The factors come from the two
grids' shapes; on grids too small to tell (see ``downsample_factors``), pass ``factors=(r_y, r_x)``. All operations
are torch ops over all sites at once (no Python loop over sites or samples) and run on CPU and CUDA.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ada3d.models.adaptive.bev_grid import downsample_factors
from sparse_ops import SparseTensor

Factors = tuple[int, int] | None


def site_cells(x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None) -> torch.Tensor:
    """``[N]`` int64 flat importance-cell index ``(b * H + row) * W + col`` of every site of ``x`` (2D or 3D).

    ``factors``: ``(r_y, r_x)`` from the sites' ``(y, x)`` grid to the importance grid, default derived from the
    shapes (:func:`~ada3d.models.adaptive.bev_grid.downsample_factors`). Rows and columns beyond the grid (only
    possible with explicit factors) are clipped to ``H - 1`` / ``W - 1``.
    """
    height, width = (int(s) for s in grid_shape)
    if factors is None:
        factors = downsample_factors(x.spatial_shape[-2:], (height, width))
    factor_y, factor_x = factors
    indices = x.indices.long()
    rows = torch.div(indices[:, -2], factor_y, rounding_mode="floor").clamp_(max=height - 1)
    cols = torch.div(indices[:, -1], factor_x, rounding_mode="floor").clamp_(max=width - 1)
    return (indices[:, 0] * height + rows) * width + cols


def pool_to_grid(x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None) -> torch.Tensor:
    """Mean of the features of all sites in each importance cell (over all z and sub-cells).

    Args:
        x: a 2D or 3D sparse tensor with ``C`` channels.
        grid_shape: ``(H, W)`` of the importance grid.
        factors: see :func:`site_cells`.

    Returns:
        ``[B, C, H, W]`` in the features' dtype, in ``torch.channels_last`` memory format (as accumulated; convs
        take it as is); zero in cells without a site. Differentiable w.r.t. the features.
    """
    height, width = (int(s) for s in grid_shape)
    num_cells = x.batch_size * height * width
    cells = site_cells(x, (height, width), factors=factors)
    features = x.features
    sums = features.new_zeros(num_cells, features.shape[1]).index_add(0, cells, features)
    counts = torch.bincount(cells, minlength=num_cells).clamp_(min=1).to(features.dtype)
    means = sums / counts[:, None]
    return means.view(x.batch_size, height, width, -1).permute(0, 3, 1, 2)


def occupancy(x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None) -> torch.Tensor:
    """``[B, H, W]`` bool: importance cells that hold at least one site of ``x`` (2D or 3D); ``factors``: see
    :func:`site_cells`."""
    height, width = (int(s) for s in grid_shape)
    occupied = torch.zeros(x.batch_size * height * width, dtype=torch.bool, device=x.features.device)
    occupied[site_cells(x, (height, width), factors=factors)] = True
    return occupied.view(x.batch_size, height, width)


def sites_per_sample(x: SparseTensor) -> torch.Tensor:
    """``[B]`` int64 number of active sites of each sample."""
    return torch.bincount(x.indices[:, 0].long(), minlength=x.batch_size)


def drop_columns(x: SparseTensor, keep: torch.Tensor, *, factors: Factors = None) -> SparseTensor:
    """The 3D tensor with only the voxel columns whose importance cell is kept.

    Args:
        x: a 3D sparse tensor, indices ``(b, z, y, x)``.
        keep: ``[B, H, W]`` bool on the importance grid.
        factors: see :func:`site_cells`.

    Returns:
        A tensor on the surviving sites, features unchanged (rows in their original order, gradients flow to
        them). Its sites are new, so it starts a fresh kernel-map cache.
    """
    return _keep_sites(x, keep, 3, factors)


def drop_pixels(x: SparseTensor, keep: torch.Tensor, *, factors: Factors = None) -> SparseTensor:
    """:func:`drop_columns` for a 2D (BEV) sparse tensor, indices ``(b, y, x)``."""
    return _keep_sites(x, keep, 2, factors)


def _keep_sites(x: SparseTensor, keep: torch.Tensor, ndim: int, factors: Factors) -> SparseTensor:
    if x.ndim != ndim:
        raise ValueError(f"expected a {ndim}D sparse tensor, got spatial_shape {x.spatial_shape}")
    if keep.dtype != torch.bool or keep.dim() != 3 or keep.shape[0] != x.batch_size:
        raise ValueError(
            f"keep must be a bool [B={x.batch_size}, H, W] mask, got {keep.dtype} of shape {tuple(keep.shape)}"
        )
    if keep.device != x.features.device:
        raise ValueError(f"keep is on {keep.device} but the sparse tensor on {x.features.device}")
    rows = keep.reshape(-1)[site_cells(x, keep.shape[1:], factors=factors)]
    return SparseTensor(x.features[rows], x.indices[rows], x.spatial_shape, x.batch_size, validate=False)
