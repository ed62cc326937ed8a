"""Sparse convolution modules with spconv v2 semantics and weight layout ``[C_out, *kernel, C_in]``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from sparse_ops.conv.config import ConvConfig
from sparse_ops.conv.functional import sparse_conv
from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.kmap.kernel_map import KernelMap
from sparse_ops.nn.module import SparseModule
from sparse_ops.tensor import SparseTensor


class SparseConvolution(SparseModule):
    """One sparse convolution over ``ndim`` spatial dims: submanifold, strided or inverse.

    Args:
        ndim: number of spatial dimensions (2 or 3).
        in_channels / out_channels: feature channels.
        kernel_size, stride, padding, dilation: ints or per-dimension tuples (dense-conv meaning).
        bias: learn an additive ``[C_out]`` bias.
        subm: submanifold: outputs at exactly the input sites, kernel centred on each of them.
        inverse: invert the strided conv registered under ``indice_key``: outputs at that conv's
            input sites, its kernel map transposed (stride / padding / dilation come from it).
        indice_key: name under which the kernel map is cached on the tensor (spconv semantics):
            layers with the same key and the same input sites share one map.

    Shapes: ``SparseTensor`` with ``[N_in, C_in]`` features -> ``SparseTensor`` with ``[N_out, C_out]``.
    The weight is ``[C_out, *kernel_size, C_in]``, so spconv v2 checkpoints load unchanged.
    """

    def __init__(
        self,
        ndim: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        subm: bool = False,
        inverse: bool = False,
        indice_key: str | None = None,
    ) -> None:
        super().__init__()
        if subm and inverse:
            raise ValueError("a convolution is either submanifold or inverse, not both")
        if inverse and indice_key is None:
            raise ValueError("an inverse convolution needs the indice_key of the strided convolution it inverts")
        self.ndim = ndim
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.subm = subm
        self.inverse = inverse
        self.indice_key = indice_key
        self.geometry = ConvGeometry.create(ndim, kernel_size, stride, padding, dilation, subm=subm)
        self.config: ConvConfig | None = None  # dataflow + tiles; None = default_config (set by the autotuner)
        self.weight = nn.Parameter(torch.empty(out_channels, *self.geometry.kernel_size, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    @property
    def kernel_size(self) -> tuple[int, ...]:
        return self.geometry.kernel_size

    def reset_parameters(self) -> None:
        """Kaiming-uniform weights and uniform bias, as ``torch.nn.Conv3d`` initialises them."""
        fan_in = self.in_channels * self.geometry.kernel_volume
        bound = 1.0 / math.sqrt(fan_in) if fan_in else 0.0
        nn.init.uniform_(self.weight, -bound, bound)  # kaiming_uniform_(a=sqrt(5)) reduces to this bound
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def kernel_map(self, x: SparseTensor) -> KernelMap:
        """The kernel map for input ``x``: from its cache under ``indice_key`` or newly built (and cached)."""
        if self.inverse:
            return x.kernel_maps.lookup_inverse(self.indice_key, self.geometry.kernel_size, x.indices)
        return x.kernel_maps.get_or_build(self.indice_key, x.indices, x.spatial_shape, self.geometry, x.batch_size)

    def forward(self, x: SparseTensor) -> SparseTensor:
        if x.ndim != self.ndim:
            raise ValueError(f"{self.__class__.__name__} is {self.ndim}D but got a {x.ndim}D SparseTensor")
        if x.num_channels != self.in_channels:
            raise ValueError(
                f"{self.__class__.__name__}({self.in_channels} -> {self.out_channels}) got features with "
                f"{x.num_channels} channels"
            )
        kmap = self.kernel_map(x)
        features = sparse_conv(x.features, self.weight, self.bias, kmap, self.config)
        return x.derive(features, kmap.out_indices, kmap.out_spatial_shape)

    def extra_repr(self) -> str:
        g = self.geometry
        parts = [f"{self.in_channels}, {self.out_channels}", f"kernel_size={g.kernel_size}"]
        if not self.inverse:
            if not self.subm:
                parts += [f"stride={g.stride}", f"padding={g.padding}"]
            if max(g.dilation) > 1:
                parts.append(f"dilation={g.dilation}")
        if self.bias is None:
            parts.append("bias=False")
        if self.indice_key is not None:
            parts.append(f"indice_key={self.indice_key!r}")
        if self.config is not None:
            parts.append(f"config={self.config}")
        return ", ".join(parts)


class _ForwardConv(SparseConvolution):
    """Submanifold or strided conv with spconv's constructor signature; subclasses fix ``ndim`` and ``subm``."""

    _ndim: int
    _subm: bool

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        bias: bool = True,
        indice_key: str | None = None,
    ) -> None:
        super().__init__(
            self._ndim,
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            bias=bias,
            subm=self._subm,
            indice_key=indice_key,
        )


class _InverseConv(SparseConvolution):
    """Inverse conv with spconv's constructor signature; subclasses fix ``ndim``."""

    _ndim: int

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int], indice_key: str, bias: bool = True
    ) -> None:
        super().__init__(
            self._ndim, in_channels, out_channels, kernel_size, bias=bias, inverse=True, indice_key=indice_key
        )


class SubMConv2d(_ForwardConv):
    """2D submanifold convolution: outputs at exactly the input sites."""

    _ndim, _subm = 2, True


class SubMConv3d(_ForwardConv):
    """3D submanifold convolution: outputs at exactly the input sites."""

    _ndim, _subm = 3, True


class SparseConv2d(_ForwardConv):
    """2D strided sparse convolution: an output wherever an input falls in its receptive field."""

    _ndim, _subm = 2, False


class SparseConv3d(_ForwardConv):
    """3D strided sparse convolution: an output wherever an input falls in its receptive field."""

    _ndim, _subm = 3, False


class SparseInverseConv2d(_InverseConv):
    """2D inverse of the strided conv cached under ``indice_key``: restores that conv's input sites."""

    _ndim = 2


class SparseInverseConv3d(_InverseConv):
    """3D inverse of the strided conv cached under ``indice_key``: restores that conv's input sites."""

    _ndim = 3
