"""Height compression kept sparse: a 3D SparseTensor's voxel columns become the sites of a 2D one."""

from __future__ import annotations

import torch

from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import active_plan
from sparse_ops.kmap.kernel_map import number_distinct
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

    In padded execution (:mod:`sparse_ops.kmap.capacity`) padding rows (batch -1) are ignored and the columns are
    numbered without a host sync into the plan's next capacity of rows (the columns in the same order, then padding
    rows: features 0, indices -1); the exact column count is recorded in the plan.
    """
    if x.ndim != 3:
        raise ValueError(f"to_bev needs a 3D SparseTensor with (b, z, y, x) indices, got a {x.ndim}D one: {x!r}")
    depth, height, width = x.spatial_shape
    channels = x.num_channels
    batch_column = torch.cat([x.indices[:, :1], x.indices[:, 2:]], dim=1)  # (b, y, x); no host-made index
    keys = encode_coords(batch_column, (height, width))
    plan = active_plan()
    if plan is None:
        column_keys, column_of_site = torch.unique(keys, return_inverse=True)
        num_columns, spare = column_keys.shape[0], 0
        column_indices = decode_coords(column_keys, (height, width))
    else:  # padding rows go to the spare column num_columns, cut off below
        capacity = plan.next_capacity(bound=x.indices.shape[0])
        column_keys, column_of_site, count = number_distinct(
            keys, x.indices[:, 0] >= 0, capacity, key_bound=x.batch_size * height * width
        )
        plan.record(count)
        num_columns, spare = column_keys.shape[0], 1
        is_column = (torch.arange(num_columns, device=keys.device) < count).unsqueeze(1)
        column_indices = decode_coords(column_keys.where(is_column.squeeze(1), 0), (height, width)).where(is_column, -1)
    depth_of_site = x.indices[:, 1].long().clamp(min=0)
    stacked = x.features.new_zeros(((num_columns + spare) * depth, channels))
    stacked = stacked.index_put((column_of_site * depth + depth_of_site,), x.features)  # rows (column, d)
    features = stacked[: num_columns * depth].view(-1, depth, channels).transpose(1, 2).reshape(-1, channels * depth)
    return SparseTensor(features, column_indices, (height, width), x.batch_size, validate=False)
