"""Sparse max pooling modules."""

from __future__ import annotations

from collections.abc import Sequence

from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.nn.module import SparseModule
from sparse_ops.pool import sparse_max_pool
from sparse_ops.tensor import SparseTensor


class SparseMaxPool(SparseModule):
    """Max over the active inputs in each output's window; outputs as a strided conv of the same geometry.

    Args:
        ndim: 2 or 3.
        kernel_size, stride (default: ``kernel_size``), padding, dilation: dense max-pool meaning.
        indice_key: cache the kernel map under this key (an inverse conv can then restore the sites).
    """

    _ndim: int

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        indice_key: str | None = None,
    ) -> None:
        super().__init__()
        stride = kernel_size if stride is None else stride
        self.geometry = ConvGeometry.create(self._ndim, kernel_size, stride, padding, dilation)
        self.indice_key = indice_key

    def forward(self, x: SparseTensor) -> SparseTensor:
        kmap = x.kernel_maps.get_or_build(self.indice_key, x.indices, x.spatial_shape, self.geometry, x.batch_size)
        return x.derive(sparse_max_pool(x.features, kmap), kmap.out_indices, kmap.out_spatial_shape)

    def extra_repr(self) -> str:
        g = self.geometry
        return f"kernel_size={g.kernel_size}, stride={g.stride}, padding={g.padding}, dilation={g.dilation}"


class SparseMaxPool2d(SparseMaxPool):
    """2D sparse max pooling."""

    _ndim = 2


class SparseMaxPool3d(SparseMaxPool):
    """3D sparse max pooling."""

    _ndim = 3
