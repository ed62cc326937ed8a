"""The gather-GEMM-scatter dataflow: per kernel offset, gather input rows, multiply, scatter-add.

Device-agnostic torch ops. Products are computed in the feature dtype (fp16 / bf16 GEMMs accumulate
in fp32 inside the BLAS) and summed across kernel offsets in an fp32 (fp64 for fp64) accumulator.
Only the inputs, the weight and the kernel map are kept for backward: gathered copies live in two
reusable buffers for the duration of one loop.
"""

from __future__ import annotations

import torch

from sparse_ops.kmap.kernel_map import KernelMap


def accumulator_dtype(dtype: torch.dtype) -> torch.dtype:
    """fp64 stays fp64; every other floating dtype accumulates in fp32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _forward(features: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
    """``out[o] += features[i] @ W_k^T`` for every pair ``(i, o)`` of offset ``k``.

    Args:
        features: ``[N_in, C_in]``.
        weight: ``[C_out, *kernel, C_in]``.

    Returns:
        ``[N_out, C_out]`` sums in the accumulator dtype.
    """
    acc_dtype = accumulator_dtype(features.dtype)
    matrices = _matrices(weight).transpose(1, 2)  # [K, C_in, C_out]
    out_channels = matrices.shape[2]
    out = torch.zeros((kmap.num_out, out_channels), dtype=acc_dtype, device=features.device)
    slices = kmap.offset_slices()
    largest = max((stop - start for k, start, stop in slices if k != kmap.identity_offset), default=0)
    gathered = features.new_empty((largest, features.shape[1]))
    product = features.new_empty((largest, out_channels))
    for k, start, stop in slices:
        if k == kmap.identity_offset:
            _add_product(out, features, matrices[k])
            continue
        rows = stop - start
        torch.index_select(features, 0, kmap.in_rows[start:stop], out=gathered[:rows])
        torch.mm(gathered[:rows], matrices[k], out=product[:rows])
        out.index_add_(0, kmap.out_rows[start:stop], product[:rows].to(acc_dtype))
    return out


def _backward(
    features: torch.Tensor,
    weight: torch.Tensor,
    grad_out: torch.Tensor,
    kmap: KernelMap,
    need_features: bool,
    need_weight: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients in one pass over the offsets, gathering each offset's ``grad_out`` rows once.

    ``grad_features[i] += grad_out[o] @ W_k`` and ``grad_weight[k] += features[i]^T grad_out[o]``
    for every pair ``(i, o)`` of offset ``k``. Returns ``[N_in, C_in]`` and ``[K, C_in, C_out]``
    (accumulator dtype), or None where not needed.
    """
    acc_dtype = accumulator_dtype(features.dtype)
    in_channels, out_channels = features.shape[1], grad_out.shape[1]
    device = features.device
    matrices = _matrices(weight)  # [K, C_out, C_in]
    grad_features = torch.zeros((kmap.num_in, in_channels), dtype=acc_dtype, device=device) if need_features else None
    grad_weight = (
        torch.zeros((len(kmap.offset_counts), in_channels, out_channels), dtype=acc_dtype, device=device)
        if need_weight
        else None
    )
    slices = kmap.offset_slices()
    largest = max((stop - start for k, start, stop in slices if k != kmap.identity_offset), default=0)
    gathered_out = grad_out.new_empty((largest, out_channels))
    gathered_in = features.new_empty((largest, in_channels))
    product = features.new_empty((largest, in_channels))
    for k, start, stop in slices:
        rows = stop - start
        if k == kmap.identity_offset:
            out_k, in_k = grad_out, features
        else:
            out_k = torch.index_select(grad_out, 0, kmap.out_rows[start:stop], out=gathered_out[:rows])
            in_k = gathered_in[:rows]
            if need_weight:
                torch.index_select(features, 0, kmap.in_rows[start:stop], out=in_k)
        if need_features:
            if k == kmap.identity_offset:
                _add_product(grad_features, out_k, matrices[k])
            else:
                torch.mm(out_k, matrices[k], out=product[:rows])
                grad_features.index_add_(0, kmap.in_rows[start:stop], product[:rows].to(acc_dtype))
        if need_weight:
            if grad_weight.dtype == features.dtype:
                torch.mm(in_k.t(), out_k, out=grad_weight[k])
            else:
                grad_weight[k] = (in_k.t() @ out_k).to(acc_dtype)
    return grad_features, grad_weight


class GatherGemmScatter(torch.autograd.Function):
    """Sparse convolution ``out[o] = sum_k sum_{(i, o) in pairs_k} W_k x[i]`` with exact backward."""

    @staticmethod
    def forward(ctx, features: torch.Tensor, weight: torch.Tensor, kmap: KernelMap) -> torch.Tensor:
        """``features`` ``[N_in, C_in]``, ``weight`` ``[C_out, *kernel, C_in]`` -> ``[N_out, C_out]``."""
        ctx.save_for_backward(features, weight)
        ctx.kmap = kmap
        return _forward(features, weight, kmap).to(features.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        features, weight = ctx.saved_tensors
        kmap: KernelMap = ctx.kmap
        grad_out = grad_out.to(features.dtype).contiguous()
        grad_features, per_offset = _backward(
            features, weight, grad_out, kmap, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        )
        if grad_features is not None:
            grad_features = grad_features.to(features.dtype)
        grad_weight = None
        if per_offset is not None:  # [K, C_in, C_out] -> [C_out, *kernel, C_in]
            grad_weight = per_offset.permute(2, 0, 1).reshape(weight.shape).to(weight.dtype)
        return grad_features, grad_weight, None


def _add_product(target: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``target += a @ b`` in place; fused (no temporary) when the dtypes agree."""
    if target.dtype == a.dtype:
        target.addmm_(a, b)
    else:
        target += (a @ b).to(target.dtype)


def _matrices(weight: torch.Tensor) -> torch.Tensor:
    """``[C_out, *kernel, C_in]`` weight -> ``[K, C_out, C_in]`` view, one matrix per kernel offset."""
    return weight.reshape(weight.shape[0], -1, weight.shape[-1]).transpose(0, 1)
