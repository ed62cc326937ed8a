"""SparseTensor: features at active sites of a batched 2D / 3D grid."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparse_ops.kmap.cache import KernelMapCache
from sparse_ops.kmap.capacity import active_plan


class SparseTensor:
    """An immutable batch of sparse feature maps (spconv v2's ``SparseConvTensor`` layout).

    Args:
        features: ``[N, C]`` floating-point features, one row per active site.
        indices: ``[N, 1 + D]`` integer coordinates ``(b, *spatial)``, spatial dims in the order of
            ``spatial_shape`` (``(b, z, y, x)`` in 3D, ``(b, y, x)`` in 2D). Stored as int32.
            Sites must be unique.
        spatial_shape: the ``D`` grid extents, e.g. ``(41, 1600, 1408)`` for ``(z, y, x)``.
        batch_size: number of samples; samples may have no active site at all.
        validate: check dtypes, shapes and that every index lies inside the grid (one device sync).
            Internal constructors that derive a tensor from a valid one skip it.

    Raises:
        TypeError: for non-floating features or non-integer indices.
        ValueError: for mismatched shapes or indices outside ``spatial_shape`` / ``batch_size``.
    """

    __slots__ = ("_features", "_indices", "_spatial_shape", "_batch_size", "_kernel_maps")

    def __init__(
        self,
        features: torch.Tensor,
        indices: torch.Tensor,
        spatial_shape: Sequence[int],
        batch_size: int,
        *,
        validate: bool = True,
        kernel_maps: KernelMapCache | None = None,
    ) -> None:
        spatial_shape = tuple(int(s) for s in spatial_shape)
        if validate:
            _validate(features, indices, spatial_shape, batch_size)
            indices = indices.int()
        self._features = features
        self._indices = indices
        self._spatial_shape = spatial_shape
        self._batch_size = int(batch_size)
        self._kernel_maps = KernelMapCache() if kernel_maps is None else kernel_maps

    @property
    def features(self) -> torch.Tensor:
        """``[N, C]`` features."""
        return self._features

    @features.setter
    def features(self, value: torch.Tensor) -> None:
        raise AttributeError("SparseTensor is immutable: use `x = x.replace_feature(new_features)` instead")

    @property
    def indices(self) -> torch.Tensor:
        """``[N, 1 + D]`` int32 coordinates ``(b, *spatial)``."""
        return self._indices

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self._spatial_shape

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def kernel_maps(self) -> KernelMapCache:
        """The kernel-map cache shared with the tensors this one was derived from."""
        return self._kernel_maps

    @property
    def ndim(self) -> int:
        """Number of spatial dimensions (2 or 3)."""
        return len(self._spatial_shape)

    @property
    def num_channels(self) -> int:
        return int(self._features.shape[1])

    def replace_feature(self, features: torch.Tensor) -> SparseTensor:
        """A new tensor with the same sites (and kernel-map cache) and ``features`` ``[N, C']``."""
        if features.dim() != 2 or features.shape[0] != self._features.shape[0]:
            raise ValueError(
                f"replace_feature needs [{self._features.shape[0]}, C] features (one row per site), "
                f"got {tuple(features.shape)}"
            )
        return self.derive(features, self._indices, self._spatial_shape)

    def derive(self, features: torch.Tensor, indices: torch.Tensor, spatial_shape: Sequence[int]) -> SparseTensor:
        """A tensor on new sites that shares this one's batch size and kernel-map cache (no validation)."""
        return SparseTensor(
            features, indices, spatial_shape, self._batch_size, validate=False, kernel_maps=self._kernel_maps
        )

    def dense(self, channels_first: bool = True) -> torch.Tensor:
        """The dense grid: ``[B, C, *spatial_shape]`` (or ``[B, *spatial_shape, C]``), zeros at inactive sites."""
        return _ScatterToGrid.apply(
            self._features, self._indices, self._batch_size, self._spatial_shape, channels_first
        )

    @classmethod
    def from_dense(cls, grid: torch.Tensor, channels_first: bool = True) -> SparseTensor:
        """Sites where any channel of ``grid`` (``[B, C, *spatial]`` or ``[B, *spatial, C]``) is non-zero."""
        if not channels_first:
            grid = grid.movedim(-1, 1)
        active = (grid != 0).any(dim=1)
        indices = active.nonzero().int()
        features = grid.movedim(1, -1)[active]
        return cls(features, indices, grid.shape[2:], grid.shape[0])

    def __repr__(self) -> str:
        return (
            f"SparseTensor(num_sites={self._features.shape[0]}, channels={self.num_channels}, "
            f"spatial_shape={self._spatial_shape}, batch_size={self._batch_size}, dtype={self._features.dtype}, "
            f"device={self._features.device}, kernel_maps={self._kernel_maps.keys()})"
        )


class _ScatterToGrid(torch.autograd.Function):
    """Features ``[N, C]`` into a zero grid; backward gathers the grid gradient at the sites.

    Writing through a channels-last view of a channels-first grid moves N x C values instead of
    transposing the whole grid, and the explicit backward avoids autograd copying the grid.
    """

    @staticmethod
    def forward(ctx, features, indices, batch_size, spatial_shape, channels_first):
        sites = tuple(indices.long().unbind(dim=1))
        channels = features.shape[1]
        # In padded execution, padding rows (batch -1) land in a spare last batch that is cut off.
        grids = batch_size + 1 if active_plan() is not None else batch_size
        if channels_first:
            grid = features.new_zeros((grids, channels, *spatial_shape))
            grid.movedim(1, -1)[sites] = features
        else:
            grid = features.new_zeros((grids, *spatial_shape, channels))
            grid[sites] = features
        ctx.sites, ctx.channels_first = sites, channels_first
        ctx.padding = grids > batch_size
        return grid[:batch_size]

    @staticmethod
    def backward(ctx, grad_grid):
        grad = grad_grid.movedim(1, -1) if ctx.channels_first else grad_grid
        grad_features = grad[ctx.sites]
        if ctx.padding:  # padding rows read the last batch through index -1: their output was cut off, so 0
            grad_features = torch.where(ctx.sites[0].unsqueeze(1) >= 0, grad_features, 0)
        return grad_features, None, None, None, None


def _validate(
    features: torch.Tensor,
    indices: torch.Tensor,
    spatial_shape: tuple[int, ...],
    batch_size: int,
    padding_rows: bool = False,
) -> None:
    """Raise for bad features / indices; rows of batch -1 pass as padding rows with ``padding_rows`` or in padded
    execution (see kmap/capacity.py)."""
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"features must be a floating-point tensor, got {getattr(features, 'dtype', type(features))}")
    if (
        not isinstance(indices, torch.Tensor)
        or indices.is_floating_point()
        or indices.is_complex()
        or indices.dtype == torch.bool
    ):
        raise TypeError(f"indices must be an integer tensor (int32), got {getattr(indices, 'dtype', type(indices))}")
    if len(spatial_shape) not in (1, 2, 3, 4) or min(spatial_shape) < 1:
        raise ValueError(f"spatial_shape must hold 1 to 4 positive extents, got {spatial_shape}")
    if features.dim() != 2:
        raise ValueError(f"features must be [N, C], got shape {tuple(features.shape)}")
    if indices.dim() != 2 or indices.shape[1] != 1 + len(spatial_shape):
        raise ValueError(
            f"indices must be [N, {1 + len(spatial_shape)}] (batch + {len(spatial_shape)} spatial dims for "
            f"spatial_shape {spatial_shape}), got shape {tuple(indices.shape)}"
        )
    if indices.shape[0] != features.shape[0]:
        raise ValueError(f"features have {features.shape[0]} rows but indices have {indices.shape[0]}")
    if indices.device != features.device:
        raise ValueError(f"features are on {features.device} but indices on {indices.device}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if indices.shape[0] == 0 or (indices.is_cuda and torch.cuda.is_current_stream_capturing()):
        return  # a CUDA graph cannot sync: the graph runner checks its inputs before capturing
    upper = torch.tensor([batch_size, *spatial_shape], device=indices.device)
    outside = ((indices < 0) | (indices >= upper)).any(dim=1)
    if padding_rows or active_plan() is not None:
        outside &= indices[:, 0] != -1
    if bool(outside.any()):
        row = int(outside.nonzero()[0, 0])
        names = ["batch", *(f"dim{d}" for d in range(len(spatial_shape)))]
        raise ValueError(
            f"{int(outside.sum())} of {indices.shape[0]} indices lie outside the grid (columns {names}, "
            f"bounds {[batch_size, *spatial_shape]}); first offending row {row}: {indices[row].tolist()}"
        )
