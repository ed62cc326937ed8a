"""Sparse tensors against the importance grid: pool features to it, read occupancy, drop columns / pixels.

A site ``(b, [z,] y, x)`` of a sparse tensor whose ``(y, x)`` grid relates to the importance grid ``[H, W]`` by
the integer factors ``(r_y, r_x)`` of :func:`~ada3d.models.adaptive.bev_grid.downsample_factors` (``8 / s`` for a
SECOND stage at stride ``s``) lies in the importance cell ``(y // r_y, x // r_x)``. The factors come from the two
grids' shapes; on grids too small to tell (see ``downsample_factors``), pass ``factors=(r_y, r_x)``. All operations
are torch ops over all sites at once (no Python loop over sites or samples) and run on CPU and CUDA. A caller that
runs several of them on one tensor computes the sites' cells once (:func:`site_cells`) and passes them as ``cells``.

In padded execution (:mod:`sparse_ops.kmap.capacity`, as ``sparse_ops.graphs.CudaGraphRunner`` runs a network) they
ignore padding rows (batch index -1) and never sync with the host: a drop packs the kept sites, in order, into the
plan's next capacity (padding rows after them) and records the exact kept count in the plan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ada3d.models.adaptive.bev_grid import downsample_factors
from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import active_plan, compact_rows, scatter_rows
from sparse_ops.utils import triton_available

Factors = tuple[int, int] | None
Cells = torch.Tensor | None


def site_cells(x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None) -> torch.Tensor:
    """``[N]`` int64 flat importance-cell index ``(b * H + row) * W + col`` of every site of ``x`` (2D or 3D).

    ``factors``: ``(r_y, r_x)`` from the sites' ``(y, x)`` grid to the importance grid, default derived from the
    shapes (:func:`~ada3d.models.adaptive.bev_grid.downsample_factors`). Rows and columns beyond the grid (only
    possible with explicit factors) are clipped to ``H - 1`` / ``W - 1``. Padding rows (batch -1, padded execution)
    get the spare index ``B * H * W``, one past the last cell.
    """
    height, width = (int(s) for s in grid_shape)
    if factors is None:
        factors = downsample_factors(x.spatial_shape[-2:], (height, width))
    factor_y, factor_x = factors
    indices = x.indices.long()
    rows = torch.div(indices[:, -2], factor_y, rounding_mode="floor").clamp_(max=height - 1)
    cols = torch.div(indices[:, -1], factor_x, rounding_mode="floor").clamp_(max=width - 1)
    batch = indices[:, 0]
    cells = (batch * height + rows) * width + cols
    return cells.where(batch >= 0, x.batch_size * height * width)


def pool_to_grid(
    x: SparseTensor,
    grid_shape: Sequence[int],
    *,
    factors: Factors = None,
    cells: Cells = None,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of the features of all sites in each importance cell (over all z and sub-cells).

    Args:
        x: a 2D or 3D sparse tensor with ``C`` channels.
        grid_shape: ``(H, W)`` of the importance grid.
        factors: see :func:`site_cells`.
        cells: the sites' :func:`site_cells` on this grid, if already computed.
        counts: the sites per cell (:func:`cell_counts`), if already counted.

    Returns:
        ``[B, C, H, W]`` in the features' dtype, in channels-last memory (see :func:`pool_rows`); zero in cells
        without a site. Differentiable w.r.t. the features.
    """
    cells = _cells(x, grid_shape, factors, cells)
    return pool_rows(x.features, cells, x.batch_size, grid_shape, counts)


def pool_rows(
    rows: torch.Tensor,
    cells: torch.Tensor,
    batch_size: int,
    grid_shape: Sequence[int],
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean of the rows that fall in each cell.

    Args:
        rows: ``[N, C]`` features, one row per site.
        cells: ``[N]`` int64 flat cell of each row, ``(b * H + row) * W + col``; the spare index ``B * H * W``
            (padding rows, see :func:`site_cells`) is left out.
        batch_size: ``B``.
        grid_shape: ``(H, W)``.
        counts: the rows per cell (:func:`cell_counts`, any shape of ``B * H * W`` elements), if already counted.

    Returns:
        ``[B, C, H, W]`` in the rows' dtype, zero in cells without a row; a view of the ``[B, H, W, C]`` sums, so in
        channels-last memory: cuDNN runs the predictor's convs on it without a layout conversion (an NCHW copy of
        the 256-channel BEV grid took ~50 us on an H100, and cuDNN converted it back to NHWC). Differentiable
        w.r.t. ``rows``.
    """
    num_cells = _num_cells(rows, cells, batch_size, grid_shape, "pool_rows")
    sums = rows.new_zeros(num_cells + 1, rows.shape[1]).index_add(0, cells, rows)[:num_cells]
    divisors = _counts_or_count(counts, cells, num_cells).clamp(min=1).to(rows.dtype)
    return _channels_last_grid(sums / divisors[:, None], batch_size, grid_shape)


def max_pool_rows(
    rows: torch.Tensor, cells: torch.Tensor, batch_size: int, grid_shape: Sequence[int]
) -> torch.Tensor:
    """:func:`pool_rows` with the maximum of each cell's rows instead of their mean (zero in cells without a row;
    padding rows, at the spare index, left out); ``[B, C, H, W]`` in channels-last memory. Differentiable w.r.t.
    ``rows`` (the gradient goes to each cell's largest row)."""
    num_cells = _num_cells(rows, cells, batch_size, grid_shape, "max_pool_rows")
    maxima = rows.new_zeros(num_cells + 1, rows.shape[1]).scatter_reduce(
        0, cells[:, None].expand_as(rows), rows, "amax", include_self=False
    )
    return _channels_last_grid(maxima[:num_cells], batch_size, grid_shape)


def encode_pool_rows(
    rows: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    cells: torch.Tensor,
    batch_size: int,
    grid_shape: Sequence[int],
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each row through ``ReLU(rows @ weight.T + bias)`` (a site encoder with its inference norm folded in), pooled
    per cell by the mean, then the maximum: the concatenation of :func:`pool_rows` and :func:`max_pool_rows` of the
    encoded rows.

    Args:
        rows: ``[N, C_in]``; weight: ``[C_out, C_in]``; bias: ``[C_out]``.
        cells, batch_size, grid_shape: as :func:`pool_rows` (the spare index ``B * H * W`` is left out).
        counts: as :func:`pool_rows`.

    Returns:
        ``[B, 2 * C_out, H, W]`` in the weight's dtype, channels-last, zero in cells without a row. Without autograd
        on CUDA (inference) one fused Triton kernel computes it (:mod:`~ada3d.models.adaptive.triton_site_pool`);
        otherwise torch ops, differentiable.
    """
    num_cells = _num_cells(rows, cells, batch_size, grid_shape, "encode_pool_rows")
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (rows, weight, bias))
    out_channels = weight.shape[0]
    if rows.is_cuda and triton_available() and not needs_grad and out_channels & (out_channels - 1) == 0:
        from ada3d.models.adaptive.triton_site_pool import encode_pool

        counts = _counts_or_count(counts, cells, num_cells)
        pooled = encode_pool(rows, weight, bias, cells, counts)[:num_cells].to(weight.dtype)
        return _channels_last_grid(pooled, batch_size, grid_shape)
    encoded = torch.relu(F.linear(rows.to(weight.dtype), weight, bias))
    return mean_max_pool_rows(encoded, cells, batch_size, grid_shape, counts)


def mean_max_pool_rows(
    rows: torch.Tensor,
    cells: torch.Tensor,
    batch_size: int,
    grid_shape: Sequence[int],
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`pool_rows` (``counts`` as there) then :func:`max_pool_rows` of ``rows``, concatenated:
    ``[B, 2 * C, H, W]``, channels-last, differentiable w.r.t. ``rows``."""
    means = pool_rows(rows, cells, batch_size, grid_shape, counts)
    return torch.cat([means, max_pool_rows(rows, cells, batch_size, grid_shape)], dim=1)


def _num_cells(rows: torch.Tensor, cells: torch.Tensor, batch_size: int, grid_shape: Sequence[int], caller: str) -> int:
    """``B * H * W`` (the spare index), after checking that ``cells`` holds one cell per row."""
    if cells.shape != rows.shape[:1]:
        raise ValueError(f"{caller} needs one cell per row, got {tuple(cells.shape)} cells for {rows.shape[0]} rows")
    return batch_size * math.prod(int(s) for s in grid_shape)


def _channels_last_grid(per_cell: torch.Tensor, batch_size: int, grid_shape: Sequence[int]) -> torch.Tensor:
    """``[B * H * W, C]`` values per cell as a ``[B, C, H, W]`` view (channels-last memory)."""
    height, width = (int(s) for s in grid_shape)
    return per_cell.view(batch_size, height, width, -1).permute(0, 3, 1, 2)


def cell_counts(
    x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None, cells: Cells = None
) -> torch.Tensor:
    """``[B, H, W]`` int64: the number of sites of ``x`` (2D or 3D) in each importance cell, padding rows left out;
    ``factors``, ``cells``: see :func:`pool_to_grid`. One histogram gives a drop everything it counts: the occupied
    cells (``counts > 0``), the sites per sample before (``counts.flatten(1).sum(1)``) and after it (the same over
    the kept cells: a drop keeps or removes whole cells), and the divisor of the predictor's mean pooling."""
    height, width = (int(s) for s in grid_shape)
    num_cells = x.batch_size * height * width
    return _count(_cells(x, grid_shape, factors, cells), num_cells).view(x.batch_size, height, width)


def occupancy(
    x: SparseTensor, grid_shape: Sequence[int], *, factors: Factors = None, cells: Cells = None
) -> torch.Tensor:
    """``[B, H, W]`` bool: importance cells that hold at least one site of ``x`` (2D or 3D); ``factors``, ``cells``:
    see :func:`pool_to_grid`."""
    return cell_counts(x, grid_shape, factors=factors, cells=cells) > 0


def _cells(x: SparseTensor, grid_shape: Sequence[int], factors: Factors, cells: Cells) -> torch.Tensor:
    """The given ``cells`` (checked: one per site of ``x``) or :func:`site_cells` of ``x``."""
    if cells is None:
        return site_cells(x, grid_shape, factors=factors)
    if cells.shape != x.indices.shape[:1]:
        raise ValueError(f"cells must hold one cell per site, got {tuple(cells.shape)} for {x.indices.shape[0]} sites")
    return cells


def _counts_or_count(counts: torch.Tensor | None, cells: torch.Tensor, num_cells: int) -> torch.Tensor:
    """``[num_cells]`` int64 rows per cell: the given ``counts`` flattened, or counted from ``cells``."""
    return _count(cells, num_cells) if counts is None else counts.reshape(num_cells)


def _count(bins: torch.Tensor, num_bins: int) -> torch.Tensor:
    """``[num_bins]`` int64 occurrences of ``0 .. num_bins - 1`` in ``bins`` (values ``num_bins`` are ignored).

    ``torch.bincount`` sizes its output by the largest value, a host sync on CUDA; this is a fixed-size histogram.
    ``histc`` counts in per-block shared memory where it can: an ``index_add`` of ones serialised its atomics on the
    few bins of a per-sample count (46 us a call for 146k sites into 4 bins on an H100). Counted in float64, exact.
    """
    values = bins.double().where(bins < num_bins, -1.0)  # outside [0, num_bins]: not counted
    return torch.histc(values, bins=num_bins, min=0, max=num_bins).long()


def drop_columns(
    x: SparseTensor, keep: torch.Tensor, *, factors: Factors = None, max_kept: int | None = None, cells: Cells = None
) -> SparseTensor:
    """The 3D tensor with only the voxel columns whose importance cell is kept.

    Args:
        x: a 3D sparse tensor, indices ``(b, z, y, x)``.
        keep: ``[B, H, W]`` bool on the importance grid.
        factors, cells: see :func:`pool_to_grid`.
        max_kept: padded execution only: a static upper bound on the kept sites (the input's row count is always
            one), which caps the output's capacity.

    Returns:
        A tensor on the surviving sites, features unchanged (rows in their original order, gradients flow to
        them). Its sites are new, so it starts a fresh kernel-map cache. In padded execution it has the plan's
        next capacity of rows: the kept sites first, then padding rows (features 0, indices -1).
    """
    return _keep_sites(x, keep, 3, factors, max_kept, cells)


def drop_pixels(
    x: SparseTensor, keep: torch.Tensor, *, factors: Factors = None, max_kept: int | None = None, cells: Cells = None
) -> SparseTensor:
    """:func:`drop_columns` for a 2D (BEV) sparse tensor, indices ``(b, y, x)``."""
    return _keep_sites(x, keep, 2, factors, max_kept, cells)


def _keep_sites(
    x: SparseTensor, keep: torch.Tensor, ndim: int, factors: Factors, max_kept: int | None, cells: Cells
) -> SparseTensor:
    if x.ndim != ndim:
        raise ValueError(f"expected a {ndim}D sparse tensor, got spatial_shape {x.spatial_shape}")
    if keep.dtype != torch.bool or keep.dim() != 3 or keep.shape[0] != x.batch_size:
        raise ValueError(
            f"keep must be a bool [B={x.batch_size}, H, W] mask, got {keep.dtype} of shape {tuple(keep.shape)}"
        )
    if keep.device != x.features.device:
        raise ValueError(f"keep is on {keep.device} but the sparse tensor on {x.features.device}")
    spare = keep.new_zeros(1)  # the cell of padding rows (see site_cells) is never kept
    rows = torch.cat([keep.reshape(-1), spare])[_cells(x, keep.shape[1:], factors, cells)]
    plan = active_plan()
    if plan is None:
        return SparseTensor(x.features[rows], x.indices[rows], x.spatial_shape, x.batch_size, validate=False)
    bound = x.indices.shape[0] if max_kept is None else min(x.indices.shape[0], max_kept)
    capacity = plan.next_capacity(bound)
    count = rows.sum()
    plan.record(count)
    capacity = int(count) if capacity is None else capacity  # None: learning the capacities (one sync)
    target = compact_rows(rows, capacity)
    features, indices = scatter_rows(x.features, target, capacity, 0), scatter_rows(x.indices, target, capacity, -1)
    return SparseTensor(features, indices, x.spatial_shape, x.batch_size, validate=False)
