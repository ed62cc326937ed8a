"""The conv -> norm -> ReLU block of sparse encoders."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ada3d.models.layers.norm import build_norm_layer
from sparse_ops.nn import SparseConv3d, SparseSequential, SubMConv3d

_CONV_TYPES = {"SubMConv3d": SubMConv3d, "SparseConv3d": SparseConv3d}


def make_sparse_convmodule(
    in_channels: int,
    out_channels: int,
    kernel_size: int | Sequence[int],
    indice_key: str,
    norm_cfg: dict,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    conv_type: str = "SubMConv3d",
) -> SparseSequential:
    """``SparseSequential(conv (no bias), norm, ReLU)``; ``conv_type`` is ``SubMConv3d`` or ``SparseConv3d``."""
    if conv_type not in _CONV_TYPES:
        raise ValueError(f"conv_type must be one of {sorted(_CONV_TYPES)}, got {conv_type!r}")
    conv_cls = _CONV_TYPES[conv_type]
    if conv_cls is SubMConv3d:
        conv = conv_cls(in_channels, out_channels, kernel_size, bias=False, indice_key=indice_key)
    else:
        conv = conv_cls(in_channels, out_channels, kernel_size, stride, padding, bias=False, indice_key=indice_key)
    return SparseSequential(conv, build_norm_layer(norm_cfg, out_channels), nn.ReLU(inplace=True))
