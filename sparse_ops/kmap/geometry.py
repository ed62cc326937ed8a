"""Convolution geometry: kernel size, stride, padding, dilation and the output shape they give."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from sparse_ops.utils import to_tuple


@dataclass(frozen=True)
class ConvGeometry:
    """Geometry of one sparse convolution (or pooling) over ``ndim`` spatial dimensions.

    The convention is PyTorch's cross-correlation: for a strided map, input site ``i`` feeds
    output site ``o`` through kernel offset ``k`` when ``i = o * stride - padding + k * dilation``.
    A submanifold map keeps the input sites and centres the kernel: input ``o + (k - K // 2) * dilation``
    feeds output ``o``; ``stride`` must be 1 and ``padding`` is ignored (spconv v2 semantics).
    Kernel offsets ``k`` are enumerated row-major over ``kernel_size`` (the last dimension fastest),
    matching the weight layout ``[Cout, *kernel_size, Cin]``.
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    subm: bool = False

    @classmethod
    def create(
        cls,
        ndim: int,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        subm: bool = False,
    ) -> ConvGeometry:
        """Build and validate a geometry from ints or per-dimension sequences.

        Raises:
            ValueError: for non-positive kernel sizes, strides or dilations, negative padding,
                or a submanifold geometry with a stride other than 1.
        """
        geometry = cls(
            kernel_size=to_tuple(kernel_size, ndim, "kernel_size"),
            stride=to_tuple(stride, ndim, "stride"),
            padding=to_tuple(padding, ndim, "padding"),
            dilation=to_tuple(dilation, ndim, "dilation"),
            subm=subm,
        )
        for name in ("kernel_size", "stride", "dilation"):
            if min(getattr(geometry, name)) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(geometry, name)}")
        if min(geometry.padding) < 0:
            raise ValueError(f"padding must be non-negative, got {geometry.padding}")
        if subm and max(geometry.stride) != 1:
            raise ValueError(
                f"a submanifold convolution keeps its input sites: stride must be 1, got {geometry.stride}"
            )
        return geometry

    @property
    def ndim(self) -> int:
        return len(self.kernel_size)

    @property
    def kernel_volume(self) -> int:
        volume = 1
        for k in self.kernel_size:
            volume *= k
        return volume

    def kernel_offsets(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """``[K, D]`` int64 kernel positions ``k`` (each in ``[0, kernel_size)``), row-major."""
        axes = [torch.arange(k, device=device) for k in self.kernel_size]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.ndim)

    def output_shape(self, spatial_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial shape of the output, with a dense convolution's arithmetic.

        Raises:
            ValueError: if the kernel (with dilation and padding) does not fit into ``spatial_shape``.
        """
        if self.subm:
            return tuple(spatial_shape)
        out = tuple(
            (size + 2 * p - d * (k - 1) - 1) // s + 1
            for size, k, s, p, d in zip(spatial_shape, self.kernel_size, self.stride, self.padding, self.dilation)
        )
        if min(out) < 1:
            raise ValueError(
                f"convolution {self} does not fit into spatial shape {tuple(spatial_shape)}: "
                f"output shape would be {out}"
            )
        return out
