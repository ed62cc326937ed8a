"""Sparsity-preserving BatchNorm (SP-BN, Ada3D): zeros stay zero, so dropped sites stay dropped.

Plain BatchNorm subtracts a mean and adds a bias, which turns every dropped (zero) site of a BEV map
into a non-zero one. SP-BN normalises the active sites only and never shifts them:

    var = mean over active sites of (x - mean(x))^2          (per channel; biased, as in training BN)
    y   = x / sqrt(var + eps) * weight                       (no mean subtraction, no bias)

Statistics and the scaling run in at least float32 (fp16 sums of squares do not overflow, the weight
gradient's sum over sites keeps its precision); the output has the input's dtype. In training, the batch
variance normalises and updates ``running_var`` (torch's momentum convention, below); in eval,
``running_var`` normalises. Under ``torch.distributed`` with more than one rank, the per-rank site
count, sum and centred sum of squares are all-reduced differentiably, so every rank normalises with the
statistics of the global batch and gradients flow across ranks (SyncBN semantics, no separate class).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.nn.functional import all_reduce

from ada3d.registry import MODELS


def _sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """``value`` summed over all ranks (differentiably) when a multi-rank process group runs; else itself."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return all_reduce(value)
    return value


def sparsity_preserving_batch_norm(
    x: torch.Tensor,
    weight: torch.Tensor,
    running_var: torch.Tensor,
    *,
    training: bool,
    momentum: float,
    eps: float,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalise the active sites of ``x`` by their variance, without shift: zeros stay zero.

    Args:
        x: ``[N, C]`` features of N active sites (``mask`` None), or a dense map ``[B, C, *spatial]``
            whose active sites are ``mask``.
        weight: ``[C]`` per-channel gain.
        running_var: ``[C]`` running estimate of the *biased* variance (the one that normalises in
            training); updated in place when ``training`` and at least one site is active on some rank.
        training: normalise with the batch variance (synchronised over ranks) and update ``running_var``;
            otherwise normalise with ``running_var``.
        momentum: ``running_var <- (1 - momentum) * running_var + momentum * batch_var`` (torch BN's convention).
        eps: added to the variance before the square root.
        mask: ``[B, *spatial]`` bool, the active sites of a dense ``x``.

    Returns:
        Same shape and dtype as ``x``; exactly zero outside ``mask`` for a dense ``x``.
    """
    if mask is None:
        reduce_dims, channel_shape, active = (0,), (1, -1), None
    else:
        reduce_dims = (0, *range(2, x.dim()))
        channel_shape = (1, -1, *(1,) * (x.dim() - 2))
        active = mask.unsqueeze(1)
    if training:
        variance, count = _batch_variance(x, active, reduce_dims, channel_shape)
        with torch.no_grad():
            updated = torch.lerp(running_var, variance.detach().to(running_var.dtype), momentum)
            running_var.copy_(torch.where(count > 0, updated, running_var))
    else:
        variance = running_var
    stat_dtype = torch.promote_types(x.dtype, torch.float32)
    scale = weight.to(stat_dtype) * torch.rsqrt(variance.to(stat_dtype) + eps)
    y = (x.to(stat_dtype) * scale.view(channel_shape)).to(x.dtype)
    return y if active is None else torch.where(active, y, torch.zeros((), dtype=y.dtype, device=y.device))


def _batch_variance(
    x: torch.Tensor, active: torch.Tensor | None, reduce_dims: tuple[int, ...], channel_shape: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel biased variance ``[C]`` of the active sites over all ranks (two passes: mean, then the
    centred sum of squares, which is stable where ``E[x^2] - E[x]^2`` cancels), and the global site count."""
    stat_dtype = torch.promote_types(x.dtype, torch.float32)
    values = x.to(stat_dtype)
    if active is None:
        count = values.new_full((1,), x.shape[0])
    else:
        count = active.sum(dtype=stat_dtype).view(1)
        values = torch.where(active, values, torch.zeros((), dtype=stat_dtype, device=x.device))
    count_and_sum = _sum_over_ranks(torch.cat([count, values.sum(dim=reduce_dims)]))
    count, denominator = count_and_sum[0], count_and_sum[0].clamp(min=1)
    mean = count_and_sum[1:] / denominator
    centred = values - mean.view(channel_shape)
    if active is not None:
        centred = torch.where(active, centred, torch.zeros((), dtype=stat_dtype, device=x.device))
    variance = _sum_over_ranks(centred.square().sum(dim=reduce_dims)) / denominator
    return variance, count


@MODELS.register_module(name=["SPBN", "SparsityPreservingBatchNorm"])
class SparsityPreservingBatchNorm(nn.Module):
    """SP-BN over either layout: ``[N, C]`` rows of active sites, or a dense ``[B, C, *spatial]`` map + mask.

    Args:
        num_features: channels C.
        eps: added to the variance (SECOND's BN value by default).
        momentum: running-variance update factor, torch's convention (SECOND's BN value by default).

    Parameters and buffers: ``weight [C]`` (init 1) and ``running_var [C]`` (init 1), which holds the
    *biased* variance of the active sites, i.e. exactly what normalises in training (Ada3D's choice), so
    eval-mode outputs match training-mode outputs once the statistics have converged. There is no bias and
    no running mean. All three classes of this family have the same state dict.

    ``forward(x [N, C])`` normalises every row; ``forward(x [B, C, *spatial], mask=None)`` normalises the
    sites of ``mask`` (``[B, *spatial]`` bool; default: the sites with any non-zero channel) and returns
    zeros elsewhere.
    """

    def __init__(self, num_features: int, eps: float = 1e-3, momentum: float = 0.01) -> None:
        super().__init__()
        if not isinstance(momentum, (int, float)) or not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must lie in [0, 1], got {momentum}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def reset_running_stats(self) -> None:
        self.running_var.fill_(1.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}({self.num_features}) needs [N, {self.num_features}] rows or "
                f"[B, {self.num_features}, *spatial] maps, got shape {tuple(x.shape)}"
            )
        if x.dim() == 2:
            if mask is not None:
                raise ValueError(f"{type(self).__name__}: [N, C] rows are all active sites; a mask needs a dense map")
        elif mask is None:
            mask = (x != 0).any(dim=1)
        elif mask.dtype != torch.bool or mask.shape != (x.shape[0], *x.shape[2:]):
            raise ValueError(
                f"{type(self).__name__}: mask must be bool {[x.shape[0], *x.shape[2:]]} for input "
                f"{tuple(x.shape)}, got {mask.dtype} {list(mask.shape)}"
            )
        return sparsity_preserving_batch_norm(
            x, self.weight, self.running_var, training=self.training, momentum=self.momentum, eps=self.eps, mask=mask
        )

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


@MODELS.register_module(name=["SPBN1d", "SparsityPreservingBatchNorm1d"])
class SparsityPreservingBatchNorm1d(SparsityPreservingBatchNorm):
    """SP-BN on ``[N, C]`` features of N active sites (a SparseTensor's features; ``SparseSequential``
    applies it to them)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"SparsityPreservingBatchNorm1d needs [N, C] features, got shape {tuple(x.shape)}")
        return super().forward(x)


@MODELS.register_module(name=["SPBN2d", "SparsityPreservingBatchNorm2d"])
class SparsityPreservingBatchNorm2d(SparsityPreservingBatchNorm):
    """SP-BN on dense ``[B, C, H, W]`` maps; ``mask`` ``[B, H, W]`` bool marks the active sites (default:
    any non-zero channel). The output is exactly zero outside the mask."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"SparsityPreservingBatchNorm2d needs [B, C, H, W] maps, got shape {tuple(x.shape)}")
        return super().forward(x, mask)
