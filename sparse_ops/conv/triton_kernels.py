"""Triton kernels of the implicit-GEMM dataflow (import only where Triton is installed).

``implicit_gemm_kernel`` computes ``out[r] = sum_k x[nbr[r, k]] @ W[k]`` for tiles of target rows, reading
``W[k][c, n]`` at ``w_ptr + k * stride_wk + c * stride_wc + n * stride_wn`` so the module's
``[C_out, *kernel, C_in]`` weight (or its transpose) is used in place;
it serves the forward pass (output-major map) and the input gradient (input-major map with the
transposed weights). ``weight_grad_kernel`` computes ``dW[k] = sum_r x[nbr[r, k]]^T g[r]``.
Both accumulate in fp32; fp32 inputs use IEEE or TF32 dots as asked.
"""

import triton
import triton.language as tl


@triton.jit
def _offset_product(x_ptr, w_ptr, src, k, c0, cols, col_ok, stride_wk, stride_wc, stride_wn,
                    IN_CHANNELS: tl.constexpr, INPUT_PRECISION: tl.constexpr, BLOCK_K: tl.constexpr):
    """``x[src, c0:c0+BLOCK_K] @ W[k, c0:c0+BLOCK_K, cols]`` in fp32; rows with ``src < 0`` read zeros."""
    chans = c0 + tl.arange(0, BLOCK_K)
    chan_ok = chans < IN_CHANNELS
    a = tl.load(x_ptr + src[:, None] * IN_CHANNELS + chans[None, :], mask=(src >= 0)[:, None] & chan_ok[None, :],
                other=0.0)
    b = tl.load(w_ptr + k * stride_wk + chans[:, None] * stride_wc + cols[None, :] * stride_wn,
                mask=chan_ok[:, None] & col_ok[None, :], other=0.0)
    return tl.dot(a, b, input_precision=INPUT_PRECISION)


@triton.jit
def implicit_gemm_kernel(
    x_ptr,
    w_ptr,
    nbr_ptr,
    out_ptr,
    order_ptr,
    tile_mask_ptr,
    num_rows,
    stride_wk,
    stride_wc,
    stride_wn,
    IN_CHANNELS: tl.constexpr,
    OUT_CHANNELS: tl.constexpr,
    NUM_OFFSETS: tl.constexpr,
    OFFSETS_POW2: tl.constexpr,
    SORTED: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    SPLITS: tl.constexpr,
):
    """x ``[N_src, C_in]``, W ``[K, C_in, C_out]`` (strided), nbr ``[N_rows, K]`` int32, out ``[N_rows, C_out]``
    (``[SPLITS, N_rows, C_out]`` partial sums when ``SPLITS > 1``).

    Unsorted tiles run one flat loop over (offset, channel block) with no branch inside, so Triton can software-
    pipeline the gathers (``num_stages``); only tiles with no neighbour at all (padding rows) skip it. With
    ``SPLITS > 1`` program ``(m, n, s)`` runs the ``s``-th contiguous share of that loop (rounded up; steps past
    its end gather zeros) and writes its own partial sum. Sorted tiles (``SPLITS == 1``) loop per offset and skip
    the offsets their tile mask excludes.
    """
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    pid_s = tl.program_id(2)
    slots = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    in_range = slots < num_rows
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    col_ok = cols < OUT_CHANNELS
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    if SORTED:
        rows = tl.load(order_ptr + slots, mask=in_range, other=0).to(tl.int64)
        tile_mask = tl.load(tile_mask_ptr + pid_m)
        for k in range(NUM_OFFSETS):
            if (tile_mask >> k) & 1:  # some row of the sorted tile uses offset k
                src = tl.load(nbr_ptr + rows * NUM_OFFSETS + k, mask=in_range, other=-1).to(tl.int64)
                for c0 in range(0, IN_CHANNELS, BLOCK_K):
                    acc += _offset_product(x_ptr, w_ptr, src, k, c0, cols, col_ok, stride_wk, stride_wc, stride_wn,
                                           IN_CHANNELS, INPUT_PRECISION, BLOCK_K)
    else:
        rows = slots.to(tl.int64)
        offsets = tl.arange(0, OFFSETS_POW2)
        table = tl.load(nbr_ptr + rows[:, None] * NUM_OFFSETS + offsets[None, :],
                        mask=in_range[:, None] & (offsets < NUM_OFFSETS)[None, :], other=-1)
        if tl.max(tl.max(table, axis=1), axis=0) >= 0:
            channel_steps: tl.constexpr = (IN_CHANNELS + BLOCK_K - 1) // BLOCK_K
            num_steps: tl.constexpr = NUM_OFFSETS * channel_steps
            steps_per_split: tl.constexpr = (num_steps + SPLITS - 1) // SPLITS
            for i in range(steps_per_split):
                step = pid_s * steps_per_split + i  # past num_steps (the last split's tail): gathers zeros
                k = tl.minimum(step // channel_steps, NUM_OFFSETS - 1)
                src = tl.load(nbr_ptr + rows * NUM_OFFSETS + k, mask=in_range, other=-1).to(tl.int64)
                src = tl.where(step < num_steps, src, -1)
                acc += _offset_product(x_ptr, w_ptr, src, k, (step % channel_steps) * BLOCK_K, cols, col_ok,
                                       stride_wk, stride_wc, stride_wn, IN_CHANNELS, INPUT_PRECISION, BLOCK_K)
    tl.store(
        out_ptr + pid_s * num_rows * OUT_CHANNELS + rows[:, None] * OUT_CHANNELS + cols[None, :],
        acc.to(out_ptr.dtype.element_ty),
        mask=in_range[:, None] & col_ok[None, :],
    )


@triton.jit
def weight_grad_kernel(
    x_ptr,
    g_ptr,
    nbr_ptr,
    dw_ptr,
    num_rows,
    IN_CHANNELS: tl.constexpr,
    OUT_CHANNELS: tl.constexpr,
    NUM_OFFSETS: tl.constexpr,
    INPUT_PRECISION: tl.constexpr,
    ROW_BLOCKS: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """x ``[N_src, C_in]``, g ``[N_rows, C_out]``, nbr ``[N_rows, K]``; atomically adds into fp32
    dw ``[K, C_in, C_out]``. Grid: (K, C_in tiles x C_out tiles, row chunks of ROW_BLOCKS x BLOCK_M)."""
    k = tl.program_id(0)
    tiles_n = tl.cdiv(OUT_CHANNELS, BLOCK_N)
    pid_c = tl.program_id(1) // tiles_n
    pid_n = tl.program_id(1) % tiles_n
    chunk = tl.program_id(2)
    chans = pid_c * BLOCK_K + tl.arange(0, BLOCK_K)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    chan_ok = chans < IN_CHANNELS
    col_ok = cols < OUT_CHANNELS
    acc = tl.zeros((BLOCK_K, BLOCK_N), dtype=tl.float32)
    for block in range(ROW_BLOCKS):
        rows = ((chunk * ROW_BLOCKS + block) * BLOCK_M + tl.arange(0, BLOCK_M)).to(tl.int64)
        row_ok = rows < num_rows
        src = tl.load(nbr_ptr + rows * NUM_OFFSETS + k, mask=row_ok, other=-1).to(tl.int64)
        if tl.max(src, axis=0) >= 0:  # blocks without a pair for offset k add nothing
            a = tl.load(
                x_ptr + src[:, None] * IN_CHANNELS + chans[None, :],
                mask=(src >= 0)[:, None] & chan_ok[None, :],
                other=0.0,
            )
            g = tl.load(
                g_ptr + rows[:, None] * OUT_CHANNELS + cols[None, :],
                mask=row_ok[:, None] & col_ok[None, :],
                other=0.0,
            )
            acc += tl.dot(tl.trans(a), g, input_precision=INPUT_PRECISION)
    tl.atomic_add(
        dw_ptr + (k * IN_CHANNELS + chans[:, None]) * OUT_CHANNELS + cols[None, :],
        acc,
        mask=chan_ok[:, None] & col_ok[None, :],
    )
