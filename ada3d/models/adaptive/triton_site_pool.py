"""The importance predictor's site encoder at inference as one Triton kernel (import only where Triton is installed).

``encode_pool_kernel`` runs each site through ``ReLU(x @ W + b)`` in registers and pools the result into its
importance cell: the mean (each row adds its share ``1 / count``) into the first ``C`` channels of the cell's row,
the maximum into the last ``C``. The torch ops it replaces (a linear layer, its norm and ReLU, an ``index_add`` with
a division for the mean, a ``scatter_reduce`` for the maximum and a concatenation) each made a pass over the
``[N, C]`` encoded rows or the per-cell grid; on an H100 the maximum alone took 377 us for 610k sites x 32 channels.

Within a block, consecutive rows of one cell are first reduced by a segmented scan, so only the last row of each
run writes its cell, by atomics. Sites come in voxelisation order, where runs are short, yet on an H100 this cut the
kernel from 662 to 112 us in the batch-16 3D part of the synthetic benchmark (``tools/benchmark.py ada3d --profile``,
docs/benchmarks.md, session 17). In a one-off micro-benchmark (a batch of 16 built from three real KITTI scans:
2.95 voxels of a cell in a row, 12 per occupied cell) it went from 216 to 103 us; sorting the rows by cell first,
which makes whole cells into runs, saved another 13 us in the kernel but cost 45 us to sort (int32 keys).
"""

import torch
import triton
import triton.language as tl

_BLOCK_M = 128


@triton.jit
def _segmented_sum_max(starts_a, sums_a, maxima_a, starts_b, sums_b, maxima_b):
    """Combine of a segmented scan: the run of ``b`` restarts where ``b`` holds a run start."""
    restarts = starts_b != 0
    return (starts_a | starts_b, tl.where(restarts, sums_b, sums_a + sums_b),
            tl.where(restarts, maxima_b, tl.maximum(maxima_a, maxima_b)))  # fmt: skip


@triton.jit
def encode_pool_kernel(x_ptr, w_ptr, b_ptr, cells_ptr, share_ptr, out_ptr, num_rows,
                       IN_CHANNELS: tl.constexpr, OUT_CHANNELS: tl.constexpr, BLOCK_M: tl.constexpr):
    """x ``[N, C_in]``, w ``[C_in, C_out]``, b ``[C_out]``, cells ``[N]`` int64 (runs of one cell pool before their
    atomics), share ``[cells + 1]`` fp32 (one over each cell's row count), out ``[cells + 1, 2 * C_out]`` fp32,
    zeroed. ``C_out`` must be a power of two."""
    local = tl.arange(0, BLOCK_M)
    rows = tl.program_id(0) * BLOCK_M + local
    valid = rows < num_rows
    cols = tl.arange(0, OUT_CHANNELS)
    acc = tl.zeros((BLOCK_M, OUT_CHANNELS), dtype=tl.float32) + tl.load(b_ptr + cols)[None, :]
    for k in tl.static_range(IN_CHANNELS):
        xk = tl.load(x_ptr + rows.to(tl.int64) * IN_CHANNELS + k, mask=valid, other=0.0).to(tl.float32)
        acc += xk[:, None] * tl.load(w_ptr + k * OUT_CHANNELS + cols)[None, :]
    encoded = tl.maximum(acc, 0.0)
    cell = tl.load(cells_ptr + rows, mask=valid, other=-1)
    previous = tl.load(cells_ptr + rows - 1, mask=valid & (local > 0), other=-2)
    following = tl.load(cells_ptr + rows + 1, mask=(rows + 1 < num_rows) & (local < BLOCK_M - 1), other=-2)
    run_starts = (local == 0) | (previous != cell)
    run_ends = (local == BLOCK_M - 1) | (following != cell)
    share = tl.load(share_ptr + cell, mask=valid, other=0.0)
    starts = tl.broadcast_to(run_starts.to(tl.int32)[:, None], (BLOCK_M, OUT_CHANNELS))
    _, sums, maxima = tl.associative_scan((starts, encoded * share[:, None], encoded), 0, _segmented_sum_max)
    target = out_ptr + cell[:, None] * (2 * OUT_CHANNELS) + cols[None, :]
    mask = (valid & run_ends)[:, None] & (cols < OUT_CHANNELS)[None, :]
    tl.atomic_add(target, sums, mask=mask, sem="relaxed")
    tl.atomic_max(target + OUT_CHANNELS, maxima, mask=mask, sem="relaxed")  # ReLU output >= 0: zero start is exact


def encode_pool(rows: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, cells: torch.Tensor,
                counts: torch.Tensor) -> torch.Tensor:
    """``[num_cells + 1, 2 * C_out]`` fp32: per cell the mean, then the maximum of ``ReLU(rows @ weight.T + bias)``
    over its rows (zero without rows; the last row collects the spare index).

    Args:
        rows: ``[N, C_in]`` CUDA, any float dtype.
        weight: ``[C_out, C_in]``; bias: ``[C_out]``.
        cells: ``[N]`` int64 cell of each row, ``num_cells`` for rows to leave out.
        counts: ``[num_cells]`` int64 rows per cell (the spare index not counted).
    """
    out_channels = weight.shape[0]
    share = torch.cat([1.0 / counts.clamp(min=1).float(), counts.new_zeros(1, dtype=torch.float32)])
    out = torch.zeros(counts.shape[0] + 1, 2 * out_channels, dtype=torch.float32, device=rows.device)
    if rows.shape[0]:
        encode_pool_kernel[(triton.cdiv(rows.shape[0], _BLOCK_M),)](
            rows.contiguous(), weight.t().float().contiguous(), bias.float().contiguous(), cells.contiguous(), share,
            out, rows.shape[0], IN_CHANNELS=rows.shape[1], OUT_CHANNELS=out_channels, BLOCK_M=_BLOCK_M,
        )  # fmt: skip
    return out
