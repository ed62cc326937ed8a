"""The importance predictor's site encoder at inference as one Triton kernel (import only where Triton is installed).

``encode_pool_kernel`` runs each site through ``ReLU(x @ W + b)`` in registers and pools the result into its
importance cell: the mean (each row adds its share ``1 / count``) into the first ``C`` channels of the cell's row,
the maximum into the last ``C``, both by atomics. The torch ops it replaces (a linear layer, its norm and ReLU, an
``index_add`` with a division for the mean, a ``scatter_reduce`` for the maximum and a concatenation) each made a
pass over the ``[N, C]`` encoded rows or the per-cell grid; on an H100 the maximum alone took 377 us for 610k sites
x 32 channels, and the 3D part of the input drop at batch 16 went from 9.7 to 9.0 ms with the kernel.
"""

import torch
import triton
import triton.language as tl

_BLOCK_M = 128


@triton.jit
def encode_pool_kernel(x_ptr, w_ptr, b_ptr, cells_ptr, share_ptr, out_ptr, num_rows,
                       IN_CHANNELS: tl.constexpr, OUT_CHANNELS: tl.constexpr, BLOCK_M: tl.constexpr):
    """x ``[N, C_in]``, w ``[C_in, C_out]``, b ``[C_out]``, cells ``[N]`` int64, share ``[cells + 1]`` fp32 (one over
    each cell's row count), out ``[cells + 1, 2 * C_out]`` fp32, zeroed. ``C_out`` must be a power of two."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < num_rows
    cols = tl.arange(0, OUT_CHANNELS)
    acc = tl.zeros((BLOCK_M, OUT_CHANNELS), dtype=tl.float32) + tl.load(b_ptr + cols)[None, :]
    for k in tl.static_range(IN_CHANNELS):
        xk = tl.load(x_ptr + rows.to(tl.int64) * IN_CHANNELS + k, mask=row_ok, other=0.0).to(tl.float32)
        acc += xk[:, None] * tl.load(w_ptr + k * OUT_CHANNELS + cols)[None, :]
    encoded = tl.maximum(acc, 0.0)
    cell = tl.load(cells_ptr + rows, mask=row_ok, other=0)
    share = tl.load(share_ptr + cell, mask=row_ok, other=0.0)
    target = out_ptr + cell[:, None] * (2 * OUT_CHANNELS) + cols[None, :]
    mask = row_ok[:, None] & (cols < OUT_CHANNELS)[None, :]
    tl.atomic_add(target, encoded * share[:, None], mask=mask, sem="relaxed")
    tl.atomic_max(target + OUT_CHANNELS, encoded, mask=mask, sem="relaxed")  # ReLU output >= 0: zero start is exact


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
