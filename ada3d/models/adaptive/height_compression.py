"""Height compression kept sparse: a 3D SparseTensor's voxel columns become the sites of a 2D one."""

from __future__ import annotations

import torch

from sparse_ops import SparseTensor
from sparse_ops.utils import decode_coords, encode_coords


def to_bev(x: SparseTensor) -> SparseTensor:
    """Stack the height axis into channels, at the occupied BEV columns only.

    Args:
        x: 3D SparseTensor, indices ``(b, z, y, x)``, ``spatial_shape (D, H, W)``, features ``[N, C]``.

    Returns:
        2D SparseTensor with one site per occupied column ``(b, y, x)`` (sorted lexicographically),
        ``spatial_shape (H, W)`` and features ``[M, C * D]``: channel ``c * D + d`` holds channel ``c``
        of the voxel at height ``d`` (zero where that voxel is inactive), so ``to_bev(x).dense()`` equals
        ``x.dense().view(B, C * D, H, W)`` exactly. Gradients flow to ``x.features``. The result has new
        sites and therefore its own (empty) kernel-map cache.
    """
    if x.ndim != 3:
        raise ValueError(f"to_bev needs a 3D SparseTensor with (b, z, y, x) indices, got a {x.ndim}D one: {x!r}")
    depth, height, width = x.spatial_shape
    channels = x.num_channels
    batch_column = x.indices[:, [0, 2, 3]]
    column_keys, column_of_site = torch.unique(encode_coords(batch_column, (height, width)), return_inverse=True)
    stacked = x.features.new_zeros((column_keys.shape[0] * depth, channels))
    stacked = stacked.index_put((column_of_site * depth + x.indices[:, 1].long(),), x.features)  # rows (column, d)
    features = stacked.view(-1, depth, channels).transpose(1, 2).reshape(-1, channels * depth)
    return SparseTensor(
        features, decode_coords(column_keys, (height, width)), (height, width), x.batch_size, validate=False
    )
