"""Plain modules on a sparse tensor's features, and BatchNorm that ignores padding rows.

In padded execution (``sparse_ops.kmap.capacity``) a tensor carries padding rows (batch index -1). They
never feed a real row through a convolution, but a training-mode BatchNorm would fold them into its batch
statistics. :func:`apply_to_features` is how sparse containers run a plain module on features: a BatchNorm
in training under padded execution normalises with the statistics of the real rows only
(:func:`masked_batch_norm`), so padded training computes the same outputs, gradients and running
statistics as unpadded training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from sparse_ops.kmap.capacity import active_plan
from sparse_ops.tensor import SparseTensor


def apply_to_features(module: nn.Module, x: SparseTensor) -> torch.Tensor:
    """``module(x.features)``; a training BatchNorm under padded execution skips the padding rows.

    ``x`` may be any sparse tensor with ``features`` (e.g. spconv's, for twins of our networks): only
    sparse_ops' tensors carry padding rows.

    Returns:
        ``[N, C']`` the module's output for all N rows (padding rows included, as their own rows).

    Raises:
        NotImplementedError: for a ``SyncBatchNorm`` in padded training (its statistics would need the
            real-row counts of every rank).
    """
    padded_training = isinstance(module, _BatchNorm) and module.training and active_plan() is not None
    if not (padded_training and isinstance(x, SparseTensor)):
        return module(x.features)
    if isinstance(module, nn.SyncBatchNorm):
        raise NotImplementedError(
            "SyncBatchNorm is not supported in padded (CUDA-graph) training: use BN1d, or train without graphs"
        )
    return masked_batch_norm(module, x.features, x.indices[:, 0] >= 0)


def masked_batch_norm(norm: _BatchNorm, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Training-mode ``norm(features)`` with batch statistics over the ``valid`` rows only, without a sync.

    Matches ``torch.nn.BatchNorm1d`` in training on ``features[valid]``: the biased variance normalises, the
    unbiased one enters ``running_var``, ``momentum=None`` is the cumulative average. Statistics run in
    float32 at least; the output has the features' dtype. With no valid row the running statistics stay.
    On CUDA it runs on torch's SyncBatchNorm kernels (five passes over the features forward, three
    backward); elsewhere on plain tensor operations.

    Args:
        norm: the BatchNorm module (its weight, bias, eps, momentum and running statistics).
        features: ``[N, C]`` features.
        valid: ``[N]`` bool, the real rows.

    Returns:
        ``[N, C]``; the valid rows normalised, padding rows equal to the bias (finite whatever they held).
    """
    weight, bias = (norm.weight, norm.bias) if norm.affine else (None, None)
    normalise = _MaskedBatchNormCuda.apply if features.is_cuda else _masked_batch_norm_reference
    y, mean, variance, count = normalise(features, valid, weight, bias, norm.eps)
    if norm.track_running_stats and norm.running_mean is not None:
        _update_running_stats(norm, mean.detach(), variance.detach(), count)
    return y


def _masked_batch_norm_reference(
    features: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked BatchNorm on tensor operations (autograd differentiates it): ``(y, mean, biased variance, count)``."""
    dtype = torch.promote_types(features.dtype, torch.float32)
    x = features.to(dtype)
    mask = valid.unsqueeze(1)
    count = valid.sum().to(dtype)
    denominator = count.clamp(min=1)
    mean = torch.where(mask, x, 0).sum(0) / denominator
    centred = torch.where(mask, x - mean, 0)
    variance = centred.square().sum(0) / denominator
    scale = torch.rsqrt(variance + eps)
    if weight is not None:
        scale = scale * weight.to(dtype)
    y = centred * scale
    if bias is not None:  # padding rows hold the bias too, but pass it no gradient
        y = torch.where(mask, y + bias.to(dtype), bias.detach().to(dtype))
    return y.to(features.dtype), mean, variance, count


class _MaskedBatchNormCuda(torch.autograd.Function):
    """Masked BatchNorm on torch's SyncBatchNorm CUDA kernels: ``(y, mean, biased variance, count)``.

    Padding rows are set to the real rows' mean (found first with them at zero), so they add nothing to
    the spread: the statistics over all N rows then convert exactly to those of the ``count`` real rows.
    The backward is SyncBatchNorm's with the real-row count as the batch size; padding rows get no gradient.
    """

    @staticmethod
    def forward(ctx, features, valid, weight, bias, eps):
        rows, mask = features.shape[0], valid.unsqueeze(1)
        count = valid.sum()
        share = rows / count.clamp(min=1).to(torch.float32)  # N / count
        zeroed_mean, _ = torch.batch_norm_stats(torch.where(mask, features, 0), eps)
        mean = zeroed_mean * share
        filled = torch.where(mask, features, mean.to(features.dtype))
        _, spread = torch.batch_norm_stats(filled, eps)  # 1 / sqrt(sum (x - mean)^2 / N + eps)
        variance = ((spread.pow(-2) - eps) * share).clamp(min=0)
        invstd = torch.rsqrt(variance + eps)
        y = torch.batch_norm_elemt(filled, weight, bias, mean, invstd, eps)
        ctx.save_for_backward(filled, valid, weight, mean, invstd, count)
        ctx.has_bias = bias is not None
        real_rows = count.to(torch.float32)
        ctx.mark_non_differentiable(mean, variance, real_rows)
        return y, mean, variance, real_rows

    @staticmethod
    def backward(ctx, grad_y, *_):
        filled, valid, weight, mean, invstd, count = ctx.saved_tensors
        mask = valid.unsqueeze(1)
        grad_y = torch.where(mask, grad_y, 0).contiguous()
        sum_dy, sum_dy_xmu, grad_weight, grad_bias = torch.batch_norm_backward_reduce(
            grad_y, filled, mean, invstd, weight, ctx.needs_input_grad[0], weight is not None, ctx.has_bias
        )
        grad_features = None
        if ctx.needs_input_grad[0]:
            grad_features = torch.batch_norm_backward_elemt(
                grad_y, filled, mean, invstd, weight, sum_dy, sum_dy_xmu, count.to(torch.int32).view(1)
            )
            grad_features = torch.where(mask, grad_features, 0)
        return grad_features, None, grad_weight, grad_bias if ctx.has_bias else None, None


@torch.no_grad()
def _update_running_stats(norm: _BatchNorm, mean: torch.Tensor, variance: torch.Tensor, count: torch.Tensor) -> None:
    """torch's BatchNorm update of ``running_mean`` / ``running_var`` (unbiased) / ``num_batches_tracked``,
    skipped on the device (no sync) when ``count`` is 0."""
    seen = count > 0
    norm.num_batches_tracked.add_(seen.to(norm.num_batches_tracked.dtype))
    if norm.momentum is None:  # cumulative moving average
        factor = torch.where(seen, 1.0 / norm.num_batches_tracked.clamp(min=1).to(mean.dtype), 0.0)
    else:  # (no host-to-device copy of the momentum: the update may be captured in a CUDA graph)
        factor = seen.to(mean.dtype) * norm.momentum
    unbiased = variance * count / (count - 1).clamp(min=1)
    norm.running_mean.lerp_(mean.to(norm.running_mean.dtype), factor.to(norm.running_mean.dtype))
    norm.running_var.lerp_(unbiased.to(norm.running_var.dtype), factor.to(norm.running_var.dtype))
