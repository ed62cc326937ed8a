"""The functional entry point of sparse convolution: argument checks, autocast, bias."""

from __future__ import annotations

import torch

from sparse_ops.conv.config import GATHER_SCATTER, ConvConfig, implicit_gemm_default
from sparse_ops.conv.gather_scatter import GatherGemmScatter
from sparse_ops.kmap.kernel_map import KernelMap
from sparse_ops.utils import triton_available


def default_config(device: torch.device, dtype: torch.dtype, in_channels: int, out_channels: int) -> ConvConfig:
    """The dataflow an untuned ``in_channels -> out_channels`` layer computing in ``dtype`` on ``device`` uses:
    implicit GEMM with tiles fitted to the channels (:func:`~sparse_ops.conv.config.implicit_gemm_default`) on CUDA
    (fp16 / bf16 / fp32, Triton installed), gather-GEMM-scatter otherwise (CPU, fp64)."""
    if device.type == "cuda" and dtype != torch.float64 and triton_available():
        return implicit_gemm_default(in_channels, out_channels)
    return GATHER_SCATTER


def sparse_conv(
    features: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    kmap: KernelMap,
    config: ConvConfig | None = None,
) -> torch.Tensor:
    """Apply a sparse convolution along a kernel map.

    Args:
        features: ``[N_in, C_in]`` input features (fp16, bf16, fp32 or fp64).
        weight: ``[C_out, *kernel_size, C_in]`` (spconv v2 layout), same dtype as ``features``.
        bias: optional ``[C_out]``.
        kmap: the kernel map, ``kmap.num_in == N_in``.
        config: dataflow and tiles; default :func:`default_config` (the autotuner picks per layer).

    Returns:
        ``[N_out, C_out]`` output features in the features' dtype (under autocast, its dtype).

    Raises:
        ValueError: if shapes disagree with each other or with the kernel map.
        TypeError: if features and weight have different dtypes outside autocast.
    """
    kernel_size = kmap.geometry.kernel_size
    expected = (weight.shape[0], *kernel_size, features.shape[-1])
    if features.dim() != 2 or tuple(weight.shape) != expected:
        raise ValueError(
            f"sparse conv with kernel {kernel_size}: features {tuple(features.shape)} need a weight of shape "
            f"[C_out, *kernel, C_in] = {list(expected)}, got {tuple(weight.shape)}"
        )
    if features.shape[0] != kmap.num_in:
        raise ValueError(f"features have {features.shape[0]} rows but the kernel map was built for {kmap.num_in} sites")
    device_type = features.device.type
    if torch.is_autocast_enabled(device_type):
        dtype = torch.get_autocast_dtype(device_type)
        features, weight = features.to(dtype), weight.to(dtype)
    elif features.dtype != weight.dtype:
        raise TypeError(f"features are {features.dtype} but the weight is {weight.dtype}; cast one to the other")
    if config is None:
        config = default_config(features.device, features.dtype, features.shape[1], weight.shape[0])
    with torch.autocast(device_type, enabled=False):
        if config.dataflow == "gather_scatter":
            out = GatherGemmScatter.apply(features, weight, kmap)
        else:
            from sparse_ops.conv.implicit_gemm import ImplicitGemm  # needs Triton

            out = ImplicitGemm.apply(features, weight, kmap, config)
    if bias is not None:
        out = out + bias.to(out.dtype)
    return out
