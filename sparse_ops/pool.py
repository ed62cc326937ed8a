"""Sparse max pooling along a kernel map (max over the active inputs of each output site)."""

from __future__ import annotations

import torch

from sparse_ops.kmap.kernel_map import KernelMap


class SparseMaxPoolFunction(torch.autograd.Function):
    """``out[o, c] = max over pairs (i, o) of x[i, c]``; the gradient flows to the arg-max input.

    Ties go to the lowest input row, so results are deterministic. Only the ``[N_out, C]`` arg-max
    rows are kept for backward.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
        channels = features.shape[1]
        out_rows = kmap.out_rows.unsqueeze(1).expand(-1, channels)
        gathered = features.index_select(0, kmap.in_rows)
        out = features.new_full((kmap.num_out, channels), float("-inf"))
        out.scatter_reduce_(0, out_rows, gathered, reduce="amax", include_self=True)
        is_max = gathered == out.gather(0, out_rows)
        candidates = torch.where(is_max, kmap.in_rows.unsqueeze(1), kmap.num_in)
        argmax = torch.full((kmap.num_out, channels), kmap.num_in, dtype=torch.int64, device=features.device)
        argmax.scatter_reduce_(0, out_rows, candidates, reduce="amin", include_self=True)
        ctx.save_for_backward(argmax)
        ctx.num_in = kmap.num_in
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (argmax,) = ctx.saved_tensors
        grad = grad_out.new_zeros((ctx.num_in, grad_out.shape[1]))
        grad.scatter_add_(0, argmax, grad_out)
        return grad, None


def sparse_max_pool(features: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """Max-pool ``[N_in, C]`` features along ``kmap`` -> ``[N_out, C]``.

    Every output of a strided map has at least one input, so no output is ``-inf``.
    """
    if features.shape[0] != kmap.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the kernel map was built for {kmap.num_in} sites")
    return SparseMaxPoolFunction.apply(features, kmap)
