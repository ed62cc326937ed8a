"""Kernel maps: which input site feeds which output site through which kernel offset.

Built with sorting and binary search in torch, so the same code runs on CPU and GPU and no
Python loop visits individual sites (the only loops run over chunks of kernel offsets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.utils import decode_coords, encode_coords, linear_strides

# Upper bound on (kernel offsets x sites) handled at once, to bound temporary memory.
_CANDIDATES_PER_CHUNK = 1 << 22


@dataclass(frozen=True, eq=False)
class KernelMap:
    """The (input row, output row) pairs of one convolution, grouped by kernel offset.

    Attributes:
        geometry: the convolution geometry the map was built for.
        in_indices: ``[N_in, 1 + D]`` int32 input coordinates ``(b, *spatial)``.
        out_indices: ``[N_out, 1 + D]`` int32 output coordinates.
        in_spatial_shape / out_spatial_shape: spatial extents of the input and output grids.
        in_rows / out_rows: ``[P]`` int64 row numbers into the input and output features; the
            pairs of kernel offset ``k`` occupy ``[sum(offset_counts[:k]), sum(offset_counts[:k+1]))``.
        offset_counts: ``K`` Python ints, the number of pairs per kernel offset.
        identity_offset: the offset whose pairs are exactly ``(r, r)`` for every row ``r`` (the
            centre of a submanifold map), which a dataflow may apply without gather / scatter.
        transposed: True for the map of an inverse convolution (inputs and outputs swapped).
        derived: cache of layouts derived from the pairs (e.g. implicit-GEMM neighbour tables), so
            layers sharing the map build them once.
    """

    geometry: ConvGeometry
    in_indices: torch.Tensor
    out_indices: torch.Tensor
    in_spatial_shape: tuple[int, ...]
    out_spatial_shape: tuple[int, ...]
    in_rows: torch.Tensor
    out_rows: torch.Tensor
    offset_counts: tuple[int, ...]
    identity_offset: int | None = None
    transposed: bool = False
    derived: dict = field(default_factory=dict, repr=False)  # layouts other dataflows build from the pairs

    @property
    def num_pairs(self) -> int:
        return int(self.in_rows.numel())

    @property
    def num_in(self) -> int:
        return int(self.in_indices.shape[0])

    @property
    def num_out(self) -> int:
        return int(self.out_indices.shape[0])

    def offset_slices(self) -> list[tuple[int, int, int]]:
        """``(k, start, stop)`` for every kernel offset that has at least one pair."""
        slices, start = [], 0
        for k, count in enumerate(self.offset_counts):
            if count:
                slices.append((k, start, start + count))
            start += count
        return slices

    def transpose(self) -> KernelMap:
        """The map of the inverse convolution: same pairs and offsets, inputs and outputs swapped."""
        return KernelMap(
            geometry=self.geometry,
            in_indices=self.out_indices,
            out_indices=self.in_indices,
            in_spatial_shape=self.out_spatial_shape,
            out_spatial_shape=self.in_spatial_shape,
            in_rows=self.out_rows,
            out_rows=self.in_rows,
            offset_counts=self.offset_counts,
            identity_offset=self.identity_offset,
            transposed=not self.transposed,
        )


def build_kernel_map(indices: torch.Tensor, spatial_shape: Sequence[int], geometry: ConvGeometry) -> KernelMap:
    """Build the kernel map of ``geometry`` for the active sites ``indices``.

    Args:
        indices: ``[N, 1 + D]`` int32 coordinates ``(b, *spatial)``, unique, inside ``spatial_shape``.
        spatial_shape: the ``D`` spatial extents of the input grid.
        geometry: kernel size, stride, padding, dilation and whether the conv is submanifold.

    Returns:
        A :class:`KernelMap`. Submanifold maps keep ``indices`` as outputs. Strided maps create an
        output wherever at least one input falls into its receptive field (spconv v2's rule), in
        lexicographic ``(b, *spatial)`` order.
    """
    spatial_shape = tuple(int(s) for s in spatial_shape)
    if geometry.ndim != len(spatial_shape) or indices.shape[1] != 1 + geometry.ndim:
        raise ValueError(
            f"a {geometry.ndim}D convolution needs {geometry.ndim}D sites: got indices of shape "
            f"{tuple(indices.shape)} and spatial shape {spatial_shape}"
        )
    if geometry.subm:
        return _build_submanifold_map(indices, spatial_shape, geometry)
    return _build_strided_map(indices, spatial_shape, geometry)


def _offset_chunks(num_offsets: int, num_sites: int) -> list[tuple[int, int]]:
    step = max(1, _CANDIDATES_PER_CHUNK // max(num_sites, 1))
    return [(start, min(start + step, num_offsets)) for start in range(0, num_offsets, step)]


def _build_submanifold_map(indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry) -> KernelMap:
    """Neighbour look-up by binary search over sorted site keys.

    Keys are computed on a grid padded by the kernel radius, so a neighbour's key is the site's key
    plus a constant per offset and an out-of-grid neighbour can never alias an existing site. For odd
    kernels, offset ``k`` and its mirror ``K - 1 - k`` hold the same pairs with roles swapped, so only
    the first half is searched.
    """
    device = indices.device
    num_sites = indices.shape[0]
    radius = [k // 2 * d for k, d in zip(geometry.kernel_size, geometry.dilation)]
    padded_shape = [s + 2 * r for s, r in zip(spatial_shape, radius)]
    sorted_keys, order = torch.sort(encode_coords(indices, padded_shape, offset=radius))
    strides = linear_strides(padded_shape)
    centre = torch.tensor([k // 2 for k in geometry.kernel_size], device=device)
    deltas = (geometry.kernel_offsets(device) - centre) * torch.tensor(geometry.dilation, device=device)
    key_deltas = (deltas * torch.tensor(strides, device=device)).sum(dim=1)  # [K]; no integer matmul on CUDA
    num_offsets = geometry.kernel_volume
    identity = int(sum(k // 2 * step for k, step in zip(geometry.kernel_size, linear_strides(geometry.kernel_size))))
    symmetric = all(k % 2 == 1 for k in geometry.kernel_size)
    searched = list(range(identity)) if symmetric else [k for k in range(num_offsets) if k != identity]

    found_in, found_out, found_counts = [], [], []
    for start, stop in _offset_chunks(len(searched), num_sites):
        position, found = _find_neighbours(sorted_keys, key_deltas, searched[start:stop], geometry)
        hits = found.flatten().nonzero().squeeze(1)  # grouped by offset
        found_in.append(order[position.flatten()[hits]])
        found_out.append(order[hits % num_sites])
        found_counts.append(found.sum(dim=1))
    counts = torch.cat(found_counts).tolist() if searched else []
    pairs_in = torch.cat(found_in).split(counts) if searched else ()  # per searched offset
    pairs_out = torch.cat(found_out).split(counts) if searched else ()
    sites = torch.arange(num_sites, device=device)
    if symmetric:  # offsets < identity, identity, then the mirrors K-1-k in ascending order (roles swapped)
        in_rows = [*pairs_in, sites, *pairs_out[::-1]]
        out_rows = [*pairs_out, sites, *pairs_in[::-1]]
        offset_counts = (*counts, num_sites, *counts[::-1])
    else:
        in_rows = [*pairs_in[:identity], sites, *pairs_in[identity:]]
        out_rows = [*pairs_out[:identity], sites, *pairs_out[identity:]]
        offset_counts = (*counts[:identity], num_sites, *counts[identity:])
    return KernelMap(
        geometry=geometry,
        in_indices=indices,
        out_indices=indices,
        in_spatial_shape=spatial_shape,
        out_spatial_shape=spatial_shape,
        in_rows=torch.cat(in_rows),
        out_rows=torch.cat(out_rows),
        offset_counts=tuple(offset_counts),
        identity_offset=identity,
    )


def _find_neighbours(
    sorted_keys: torch.Tensor, key_deltas: torch.Tensor, offsets: list[int], geometry: ConvGeometry
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where ``sorted_keys + key_deltas[k]`` sits in ``sorted_keys``, for each of ``offsets``.

    Returns ``[len(offsets), N]`` positions and a bool mask of the queries that are present. When the
    last dimension has dilation 1, offsets that differ only in it query consecutive keys, so one
    binary search per run of them suffices: the next query's position is the previous position,
    plus one if the previous key was found.
    """
    num_sites = sorted_keys.shape[0]
    queries = sorted_keys.unsqueeze(0) + key_deltas[offsets].unsqueeze(1)  # [k, N], each row sorted
    if num_sites == 0:
        return torch.zeros_like(queries), torch.zeros_like(queries, dtype=torch.bool)
    row_length = geometry.kernel_size[-1]
    consecutive = [
        i > 0 and geometry.dilation[-1] == 1 and offsets[i] == offsets[i - 1] + 1 and offsets[i] % row_length != 0
        for i in range(len(offsets))
    ]
    searched = [i for i, follows in enumerate(consecutive) if not follows]
    first = torch.searchsorted(sorted_keys, queries[searched])
    position = torch.empty_like(queries)
    found = torch.empty(queries.shape, dtype=torch.bool, device=queries.device)
    row = 0
    for i, follows in enumerate(consecutive):
        if follows:
            position[i] = position[i - 1] + found[i - 1]
        else:
            position[i] = first[row]
            row += 1
        position[i].clamp_(max=num_sites - 1)
        found[i] = sorted_keys[position[i]] == queries[i]
    return position, found


def _build_strided_map(indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry) -> KernelMap:
    """Per dimension, which kernel positions map each input coordinate onto the output grid; then
    every offset's output key is a sum of per-dimension terms, and outputs are the sorted unique keys."""
    device = indices.device
    num_sites = indices.shape[0]
    out_shape = geometry.output_shape(spatial_shape)
    out_strides = linear_strides([1, *out_shape])
    key = indices[:, 0].long().unsqueeze(0) * out_strides[0]  # [offsets so far, N]
    valid = torch.ones((1, num_sites), dtype=torch.bool, device=device)
    for d, (kernel, stride, padding, dilation, extent) in enumerate(
        zip(geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation, out_shape)
    ):
        # o * stride = i + padding - k * dilation, for each kernel position k of this dimension
        scaled = (
            indices[:, 1 + d].long().unsqueeze(0)
            + padding
            - torch.arange(kernel, device=device).unsqueeze(1) * dilation
        )
        out_coord = torch.div(scaled, stride, rounding_mode="floor")
        valid_d = (scaled == out_coord * stride) & (out_coord >= 0) & (out_coord < extent)  # [k_d, N]
        # offsets are row-major: the new dimension varies fastest
        valid = (valid.unsqueeze(1) & valid_d.unsqueeze(0)).reshape(valid.shape[0] * kernel, num_sites)
        key = (key.unsqueeze(1) + (out_coord * out_strides[1 + d]).unsqueeze(0)).reshape(valid.shape[0], num_sites)
    counts = valid.sum(dim=1)
    hits = valid.flatten().nonzero().squeeze(1)  # grouped by offset
    unique_keys, out_rows = torch.unique(key.flatten()[hits], sorted=True, return_inverse=True)
    in_rows = hits % num_sites if num_sites else hits
    return KernelMap(
        geometry=geometry,
        in_indices=indices,
        out_indices=decode_coords(unique_keys, out_shape),
        in_spatial_shape=spatial_shape,
        out_spatial_shape=out_shape,
        in_rows=in_rows,
        out_rows=out_rows,
        offset_counts=tuple(counts.tolist()),
    )
