"""The implicit-GEMM dataflow (Triton): output-stationary tiles over the ``[rows, K]`` neighbour table.

Forward walks output rows with the output-major table; the input gradient is the same kernel on the
input-major table with transposed weights; the weight gradient reduces over rows per offset. Only the
inputs, the weight and the (cached) tables are kept for backward.
"""

from __future__ import annotations

import torch
import triton

from sparse_ops.conv.config import ConvConfig
from sparse_ops.conv.triton_kernels import implicit_gemm_kernel, weight_grad_kernel
from sparse_ops.kmap.kernel_map import KernelMap
from sparse_ops.kmap.neighbor_map import NeighborMap, neighbor_map


def _input_precision(dtype: torch.dtype) -> str:
    return "tf32" if dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _gather_gemm(source: torch.Tensor, matrices: torch.Tensor, nmap: NeighborMap, config: ConvConfig) -> torch.Tensor:
    """``out[r] = sum_k source[nbr[r, k]] @ matrices[k]``: ``[N_rows, C_out]`` in the source dtype.

    Args:
        source: ``[N_src, C_in]`` contiguous.
        matrices: ``[K, C_in, C_out]`` in any strides (a permuted view of the weight), same dtype as ``source``.
    """
    num_rows, out_channels = nmap.num_rows, matrices.shape[2]
    if num_rows == 0:
        return source.new_empty((0, out_channels))
    splits = config.split_k
    if splits > 1:  # fp32 partial sums, added below
        out = source.new_empty((splits, num_rows, out_channels), dtype=torch.float32)
    else:
        out = source.new_empty((num_rows, out_channels))
    sorted_rows = config.dataflow == "implicit_gemm_sorted" and nmap.bitmask is not None
    order, tile_masks = nmap.sorted_tiles(config.block_m) if sorted_rows else (nmap.nbr, nmap.nbr)  # unused if unsorted
    grid = (triton.cdiv(num_rows, config.block_m), triton.cdiv(out_channels, config.block_n), splits)
    implicit_gemm_kernel[grid](
        source, matrices, nmap.nbr, out, order, tile_masks, num_rows, *matrices.stride(),
        IN_CHANNELS=source.shape[1], OUT_CHANNELS=out_channels, NUM_OFFSETS=matrices.shape[0],
        OFFSETS_POW2=triton.next_power_of_2(matrices.shape[0]),
        SORTED=sorted_rows, INPUT_PRECISION=_input_precision(source.dtype),
        BLOCK_M=config.block_m, BLOCK_N=config.block_n, BLOCK_K=config.block_k, SPLITS=splits,
        num_warps=config.num_warps, num_stages=config.num_stages,
    )  # fmt: skip
    return out.sum(0).to(source.dtype) if splits > 1 else out


def _weight_grad(features: torch.Tensor, grad_out: torch.Tensor, nmap: NeighborMap, config: ConvConfig) -> torch.Tensor:
    """``dW[k] = sum_o features[nbr[o, k]]^T grad_out[o]``: ``[K, C_in, C_out]`` fp32."""
    num_offsets = nmap.nbr.shape[1]
    in_channels, out_channels = features.shape[1], grad_out.shape[1]
    grad = torch.zeros((num_offsets, in_channels, out_channels), dtype=torch.float32, device=features.device)
    if nmap.num_rows == 0:
        return grad
    channel_tiles = triton.cdiv(in_channels, config.block_k) * triton.cdiv(out_channels, config.block_n)
    chunks = triton.cdiv(nmap.num_rows, config.block_m * config.wgrad_row_blocks)
    weight_grad_kernel[(num_offsets, channel_tiles, chunks)](
        features, grad_out, nmap.nbr, grad, nmap.num_rows,
        IN_CHANNELS=in_channels, OUT_CHANNELS=out_channels, NUM_OFFSETS=num_offsets,
        INPUT_PRECISION=_input_precision(features.dtype), ROW_BLOCKS=config.wgrad_row_blocks,
        BLOCK_M=config.block_m, BLOCK_N=config.block_n, BLOCK_K=config.block_k,
        num_warps=config.num_warps, num_stages=config.num_stages,
    )  # fmt: skip
    return grad


class ImplicitGemm(torch.autograd.Function):
    """Sparse convolution through the implicit-GEMM Triton kernels, with exact backward."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: torch.Tensor, kmap: KernelMap, config: ConvConfig):
        """``features`` ``[N_in, C_in]``, ``weight`` ``[C_out, *kernel, C_in]`` -> ``[N_out, C_out]``."""
        features = features.contiguous()
        forward_map = neighbor_map(kmap, "forward")
        per_offset = weight.reshape(weight.shape[0], -1, weight.shape[-1])  # [C_out, K, C_in]
        out = _gather_gemm(features, per_offset.permute(1, 2, 0), forward_map, config)
        ctx.save_for_backward(features, weight)
        ctx.kmap, ctx.config = kmap, config
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        features, weight = ctx.saved_tensors
        grad_out = grad_out.to(features.dtype).contiguous()
        grad_features = grad_weight = None
        if ctx.needs_input_grad[0]:
            per_offset = weight.reshape(weight.shape[0], -1, weight.shape[-1])  # [C_out, K, C_in]
            backward_map = neighbor_map(ctx.kmap, "backward")
            grad_features = _gather_gemm(grad_out, per_offset.transpose(0, 1), backward_map, ctx.config)
        if ctx.needs_input_grad[1]:
            forward_map = neighbor_map(ctx.kmap, "forward")
            per_offset = _weight_grad(features, grad_out, forward_map, ctx.config)  # [K, C_in, C_out]
            grad_weight = per_offset.permute(2, 0, 1).reshape(weight.shape).to(weight.dtype)
        return grad_features, grad_weight, None, None
