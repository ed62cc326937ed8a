"""Kernel maps: which input site feeds which output site through which kernel offset.

Built with sorting and binary search in torch, or, for neighbour tables on small grids, with a dense
index grid, so the same code runs on CPU and GPU and no Python loop visits individual sites (the only
loops run over chunks of kernel offsets).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from sparse_ops.kmap.capacity import active_plan
from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.utils import decode_coords, device_constant, encode_coords, linear_strides, triton_available

# Upper bound on (kernel offsets x sites) handled at once, to bound temporary memory.
_CANDIDATES_PER_CHUNK = 1 << 22
# Key of padding rows (batch index -1, see kmap/capacity.py) and of invalid candidates: sorts last.
PADDING_KEY = torch.iinfo(torch.int64).max
_INT32_MAX = torch.iinfo(torch.int32).max
# Largest key bound (grid cells, batch included) numbered through a dense grid instead of a sort: a grid costs a
# fill and a scan over every cell whatever the site count, at most 16 MiB as int32 here, which on a GPU is cheaper
# than the many kernels of a radix sort. Ada3D's BEV grid (batch x 200 x 176) and its last 3D encoder layers fit;
# full-resolution 3D grids (~10^8 cells per sample) are sorted.
GRID_MAX_CELLS = 1 << 22


@dataclass(frozen=True, eq=False)
class Pairs:
    """(input row, output row) pairs grouped by kernel offset: the gather-GEMM-scatter layout.

    Attributes:
        in_rows / out_rows: ``[P]`` int64; the pairs of offset ``k`` occupy
            ``[sum(offset_counts[:k]), sum(offset_counts[:k+1]))``.
        offset_counts: ``K`` Python ints, the number of pairs per offset.
    """

    in_rows: torch.Tensor
    out_rows: torch.Tensor
    offset_counts: tuple[int, ...]

    def swapped(self) -> Pairs:
        return Pairs(self.out_rows, self.in_rows, self.offset_counts)


@dataclass(frozen=True, eq=False)
class NeighborTables:
    """The implicit-GEMM layout: ``forward[o, k]`` is the input row feeding output ``o`` through offset
    ``k`` and ``backward[i, k]`` the output row input ``i`` feeds, -1 where there is none.

    Attributes:
        forward: ``[N_out, K]`` int32.
        backward: ``[N_in, K]`` int32.
    """

    forward: torch.Tensor
    backward: torch.Tensor

    def swapped(self) -> NeighborTables:
        return NeighborTables(self.backward, self.forward)


@dataclass(frozen=True, eq=False)
class KernelMap:
    """Which input site feeds which output site through which kernel offset, for one convolution.

    A map is built in one layout (pairs on CPU, neighbour tables on GPU) and derives the other on
    first use, caching it, so every dataflow can run on any map.

    Attributes:
        geometry: the convolution geometry the map was built for.
        in_indices: ``[N_in, 1 + D]`` int32 input coordinates ``(b, *spatial)``.
        out_indices: ``[N_out, 1 + D]`` int32 output coordinates.
        in_spatial_shape / out_spatial_shape: spatial extents of the input and output grids.
        identity_offset: the offset whose pairs are exactly ``(r, r)`` for every row ``r`` (the
            centre of a submanifold map), which a dataflow may apply without gather / scatter.
        transposed: True for the map of an inverse convolution (inputs and outputs swapped).
        derived: cache of layouts derived from the built one (and of dataflow-specific tilings), so
            layers sharing the map build them once.
    """

    geometry: ConvGeometry
    in_indices: torch.Tensor
    out_indices: torch.Tensor
    in_spatial_shape: tuple[int, ...]
    out_spatial_shape: tuple[int, ...]
    built_pairs: Pairs | None = None
    built_tables: NeighborTables | None = None
    identity_offset: int | None = None
    transposed: bool = False
    derived: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.built_pairs is None and self.built_tables is None:
            raise ValueError("a KernelMap needs its pairs or its neighbour tables")

    @property
    def pairs(self) -> Pairs:
        if self.built_pairs is not None:
            return self.built_pairs
        if "pairs" not in self.derived:
            self.derived["pairs"] = _pairs_from_table(self.built_tables.forward)
        return self.derived["pairs"]

    @property
    def tables(self) -> NeighborTables:
        if self.built_tables is not None:
            return self.built_tables
        if "tables" not in self.derived:
            self.derived["tables"] = _tables_from_pairs(self.built_pairs, self.num_in, self.num_out)
        return self.derived["tables"]

    @property
    def in_rows(self) -> torch.Tensor:
        return self.pairs.in_rows

    @property
    def out_rows(self) -> torch.Tensor:
        return self.pairs.out_rows

    @property
    def offset_counts(self) -> tuple[int, ...]:
        return self.pairs.offset_counts

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
            built_pairs=None if self.built_pairs is None else self.built_pairs.swapped(),
            built_tables=None if self.built_tables is None else self.built_tables.swapped(),
            identity_offset=self.identity_offset,
            transposed=not self.transposed,
        )


def _pairs_from_table(forward: torch.Tensor) -> Pairs:
    """Pairs grouped by offset from the ``[N_out, K]`` table (one device sync for the counts)."""
    present = forward.t() >= 0  # [K, N_out]
    hits = present.flatten().nonzero().squeeze(1)
    num_out = forward.shape[0]
    out_rows = hits % num_out if num_out else hits
    in_rows = forward.t().flatten()[hits].long()
    return Pairs(in_rows, out_rows, tuple(present.sum(dim=1).tolist()))


def _tables_from_pairs(pairs: Pairs, num_in: int, num_out: int) -> NeighborTables:
    num_offsets = len(pairs.offset_counts)
    device = pairs.in_rows.device
    offsets = torch.repeat_interleave(
        torch.arange(num_offsets, device=device), torch.tensor(pairs.offset_counts, device=device)
    )
    forward = torch.full((num_out, num_offsets), -1, dtype=torch.int32, device=device)
    forward[pairs.out_rows, offsets] = pairs.in_rows.int()
    backward = torch.full((num_in, num_offsets), -1, dtype=torch.int32, device=device)
    backward[pairs.in_rows, offsets] = pairs.out_rows.int()
    return NeighborTables(forward, backward)


def build_kernel_map(
    indices: torch.Tensor,
    spatial_shape: Sequence[int],
    geometry: ConvGeometry,
    layout: str | None = None,
    batch_size: int | None = None,
) -> KernelMap:
    """Build the kernel map of ``geometry`` for the active sites ``indices``.

    Args:
        indices: ``[N, 1 + D]`` int32 coordinates ``(b, *spatial)``, unique, inside ``spatial_shape``.
        spatial_shape: the ``D`` spatial extents of the input grid.
        geometry: kernel size, stride, padding, dilation and whether the conv is submanifold.
        layout: build ``"pairs"`` (few, cheap CPU ops) or ``"tables"`` (no per-offset work or
            device syncs, for GPUs) first; default by device (tables in padded execution). The other
            layout is derived on demand.
        batch_size: more than the largest batch index in ``indices`` (a SparseTensor's ``batch_size``). With it,
            the tables layout numbers keys through a dense grid when it has at most :data:`GRID_MAX_CELLS` cells,
            and site keys that fit 31 bits are sorted as int32 (:func:`sort_keys`: half the radix passes on a
            GPU); None sorts them as int64. The map is the same either way.

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
    if layout is None:  # padded execution (kmap/capacity.py) needs the sync-free tables
        layout = "tables" if indices.is_cuda or active_plan() is not None else "pairs"
    if layout not in ("pairs", "tables"):
        raise ValueError(f"layout must be 'pairs' or 'tables', got {layout!r}")
    if geometry.subm:
        build = _build_submanifold_tables if layout == "tables" else _build_submanifold_map
    else:
        build = _build_strided_tables if layout == "tables" else _build_strided_map
    return build(indices, spatial_shape, geometry, batch_size)


def sort_keys(keys: torch.Tensor, key_bound: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.sort(keys)`` of int64 keys that are each below ``key_bound`` or :data:`PADDING_KEY`.

    When ``key_bound`` fits 31 bits the sort runs on int32 copies (PADDING_KEY as int32's max): a GPU radix sort
    then makes 4 passes instead of 8. The sorted keys come back as int64 with PADDING_KEY restored; ``order`` is
    a valid sorting permutation either way (ties, i.e. padding keys, in any order).
    """
    if key_bound is None or key_bound > _INT32_MAX:
        return torch.sort(keys)
    sorted_narrow, order = torch.sort(keys.clamp(max=_INT32_MAX).int())
    return sorted_narrow.long().masked_fill_(sorted_narrow == _INT32_MAX, PADDING_KEY), order


def _key_bound(batch_size: int | None, shape: Sequence[int]) -> int | None:
    """One past the largest key :func:`~sparse_ops.utils.encode_coords` gives ``batch_size`` samples on ``shape``."""
    return None if batch_size is None else batch_size * math.prod(shape)


def _grid_applies(key_bound: int | None) -> bool:
    """Whether keys below ``key_bound`` are numbered through a dense grid of ``key_bound + 1`` cells (not sorted)."""
    return key_bound is not None and key_bound <= GRID_MAX_CELLS


def _offset_chunks(num_offsets: int, num_sites: int) -> list[tuple[int, int]]:
    step = max(1, _CANDIDATES_PER_CHUNK // max(num_sites, 1))
    return [(start, min(start + step, num_offsets)) for start in range(0, num_offsets, step)]


def _build_submanifold_map(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry, batch_size: int | None = None
) -> KernelMap:
    """Neighbour look-up by binary search over sorted site keys.

    Keys are computed on a grid padded by the kernel radius, so a neighbour's key is the site's key
    plus a constant per offset and an out-of-grid neighbour can never alias an existing site. For odd
    kernels, offset ``k`` and its mirror ``K - 1 - k`` hold the same pairs with roles swapped, so only
    the first half is searched.
    """
    device = indices.device
    num_sites = indices.shape[0]
    sorted_keys, order, key_deltas = _sorted_site_keys(indices, spatial_shape, geometry, batch_size)
    num_offsets = geometry.kernel_volume
    identity = _identity_offset(geometry)
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
    pairs = Pairs(torch.cat(in_rows), torch.cat(out_rows), tuple(offset_counts))
    return _submanifold_map(indices, spatial_shape, geometry, pairs=pairs)


def _submanifold_map(
    indices: torch.Tensor,
    spatial_shape: tuple[int, ...],
    geometry: ConvGeometry,
    pairs: Pairs | None = None,
    tables: NeighborTables | None = None,
) -> KernelMap:
    """A map whose outputs are its input sites, built as ``pairs`` or ``tables``."""
    return KernelMap(
        geometry=geometry,
        in_indices=indices,
        out_indices=indices,
        in_spatial_shape=spatial_shape,
        out_spatial_shape=spatial_shape,
        built_pairs=pairs,
        built_tables=tables,
        identity_offset=_identity_offset(geometry),
    )


def _sorted_site_keys(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry, batch_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Site keys on the grid padded by the kernel radius, sorted (with the sorting order), and the
    key offset of every kernel offset: a neighbour's key is the site's key plus that offset, and an
    out-of-grid neighbour can never alias an existing site. Padding rows get a key that matches no query."""
    site_keys, padded_shape = _padded_site_keys(indices, spatial_shape, geometry)
    sorted_keys, order = sort_keys(site_keys, _key_bound(batch_size, padded_shape))
    return sorted_keys, order, _key_deltas(geometry, padded_shape, indices.device)


def _padded_site_keys(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry
) -> tuple[torch.Tensor, tuple[int, ...]]:
    """``[N]`` int64 site keys on the grid padded by the kernel radius (:data:`PADDING_KEY` for padding rows, so
    they sort last), and that padded shape: every neighbour key stays inside its own sample's padded block."""
    radius = [k // 2 * d for k, d in zip(geometry.kernel_size, geometry.dilation)]
    padded_shape = tuple(s + 2 * r for s, r in zip(spatial_shape, radius))
    keys = encode_coords(indices, padded_shape, offset=radius)
    return torch.where(indices[:, 0] >= 0, keys, PADDING_KEY), padded_shape


def _key_deltas(geometry: ConvGeometry, padded_shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``[K]`` int64: the key difference between a site and its neighbour through each kernel offset."""
    strides = linear_strides(padded_shape)
    deltas = [
        sum((k - size // 2) * dilation * stride for k, size, dilation, stride in
            zip(offset, geometry.kernel_size, geometry.dilation, strides))
        for offset in itertools.product(*(range(size) for size in geometry.kernel_size))
    ]  # fmt: skip
    return device_constant(tuple(deltas), device)


def _identity_offset(geometry: ConvGeometry) -> int:
    """The kernel offset with zero displacement (the centre, ``K_d // 2`` in every dimension)."""
    return int(sum(k // 2 * step for k, step in zip(geometry.kernel_size, linear_strides(geometry.kernel_size))))


def _build_submanifold_tables(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry, batch_size: int | None = None
) -> KernelMap:
    """Submanifold neighbour tables, no per-offset loop and no device sync: looked up in a dense grid of site rows
    when ``batch_size`` is given and the padded grid has at most :data:`GRID_MAX_CELLS` cells
    (:func:`_grid_neighbor_table`), else by searching every offset's neighbour keys among the sorted site keys
    (on CUDA one Triton kernel). For odd kernels the input-major table is the output-major one with its offsets
    mirrored."""
    num_sites = indices.shape[0]
    site_keys, padded_shape = _padded_site_keys(indices, spatial_shape, geometry)
    key_deltas = _key_deltas(geometry, padded_shape, indices.device)
    key_bound = _key_bound(batch_size, padded_shape)
    if _grid_applies(key_bound):
        forward = _grid_neighbor_table(site_keys, key_deltas, key_bound)
    else:
        forward = _searched_neighbor_table(site_keys, key_deltas, key_bound, geometry)
    odd = all(k % 2 == 1 for k in geometry.kernel_size)
    backward = forward.flip(1).contiguous() if odd else _invert_table(forward, num_sites)
    return _submanifold_map(indices, spatial_shape, geometry, tables=NeighborTables(forward, backward))


def _grid_neighbor_table(site_keys: torch.Tensor, key_deltas: torch.Tensor, key_bound: int) -> torch.Tensor:
    """``[N, K]`` int32 neighbour table (as :func:`_neighbor_table`) through a dense ``[key_bound + 1]`` int32 grid
    holding each cell's site row or -1: one fill, one scatter, one gather, no sort.

    Args:
        site_keys: ``[N]`` int64 keys below ``key_bound``, :data:`PADDING_KEY` for padding rows (which scatter -1
            to the spare last cell and query only it, so they have no neighbours and are nobody's).
        key_deltas: ``[K]`` int64 key offset of each kernel offset (:func:`_key_deltas`).
        key_bound: one past the largest key of the padded grid.
    """
    real = (site_keys != PADDING_KEY).unsqueeze(1)  # [N, 1]
    cells = site_keys.where(real.squeeze(1), key_bound)
    rows = torch.arange(site_keys.shape[0], dtype=torch.int32, device=site_keys.device).where(real.squeeze(1), -1)
    grid = torch.full((key_bound + 1,), -1, dtype=torch.int32, device=site_keys.device)
    grid[cells] = rows
    return grid[(cells.unsqueeze(1) + key_deltas).where(real, key_bound)]


def _searched_neighbor_table(
    site_keys: torch.Tensor, key_deltas: torch.Tensor, key_bound: int | None, geometry: ConvGeometry
) -> torch.Tensor:
    """``[N, K]`` int32 neighbour table by sorting ``site_keys`` (:func:`_padded_site_keys`) and binary-searching
    every neighbour key among them (on CUDA one Triton kernel instead of ~10 passes over ``[K, N]`` temporaries)."""
    sorted_keys, order = sort_keys(site_keys, key_bound)
    if site_keys.is_cuda and triton_available():
        from sparse_ops.kmap.triton_search import neighbor_table

        run_length = geometry.kernel_size[-1] if geometry.dilation[-1] == 1 else 1
        return neighbor_table(sorted_keys, order, key_deltas, run_length, PADDING_KEY)
    return _neighbor_table(sorted_keys, order, key_deltas)


def _neighbor_table(sorted_keys: torch.Tensor, order: torch.Tensor, key_deltas: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` int32: the row of each site's neighbour through each offset, or -1 (torch ops, any device;
    :func:`sparse_ops.kmap.triton_search.neighbor_table` is the one-kernel GPU version)."""
    num_sites, num_offsets = sorted_keys.shape[0], key_deltas.shape[0]
    source = torch.full((num_offsets, num_sites), -1, dtype=torch.long, device=sorted_keys.device)
    if num_sites:
        queries = sorted_keys.unsqueeze(0) + key_deltas.unsqueeze(1)  # [K, N] in sorted-site order
        position = torch.searchsorted(sorted_keys, queries).clamp_(max=num_sites - 1)
        found = (sorted_keys[position] == queries) & (sorted_keys != PADDING_KEY)  # padding rows have no neighbours
        source = torch.where(found, order[position], source)
    forward = torch.empty((num_sites, num_offsets), dtype=torch.int32, device=sorted_keys.device)
    forward[order] = source.t().int()
    return forward


def _invert_table(table: torch.Tensor, num_sources: int) -> torch.Tensor:
    """``[N_src, K]`` with ``inverse[table[r, k], k] = r`` (and -1 elsewhere); misses go to a spare row."""
    num_rows, num_offsets = table.shape
    inverse = torch.full((num_sources + 1, num_offsets), -1, dtype=torch.int32, device=table.device)
    offsets = torch.arange(num_offsets, device=table.device).unsqueeze(0)
    rows = torch.arange(num_rows, dtype=torch.int32, device=table.device).unsqueeze(1).expand(-1, num_offsets)
    inverse[table.long().where(table >= 0, num_sources), offsets] = rows
    return inverse[:num_sources]


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


def _strided_candidates(
    indices: torch.Tensor, out_shape: tuple[int, ...], geometry: ConvGeometry
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every (input site, kernel offset) pair that can land on the output grid, with its output key.

    Works per dimension, then combines dimensions (an offset's output key is a sum of per-dimension terms). In a
    dimension with dilation 1 only the ``ceil(kernel / stride)`` kernel positions whose displacement is a multiple
    of the stride can reach an output, so a 3x3x3 stride-2 conv enumerates 8 candidates per site, not 27; every
    later step (sorting the output keys, filling the tables) scales with the candidates.

    Returns:
        ``[C, N]`` bool validity, ``[C, N]`` int64 output keys (row-major over ``(b, *out_shape)``) and ``[C, N]``
        int64 kernel offsets (row-major over ``kernel_size``), where ``C`` is the product of the per-dimension
        candidate counts.
    """
    num_sites = indices.shape[0]
    device = indices.device
    out_strides = linear_strides([1, *out_shape])
    kernel_strides = linear_strides(geometry.kernel_size)
    key = indices[:, 0].long().unsqueeze(0) * out_strides[0]  # [candidates so far, N]
    offset = torch.zeros_like(key)
    valid = (indices[:, 0] >= 0).unsqueeze(0)  # padding rows feed no output
    for d, (kernel, stride, padding, dilation, extent) in enumerate(
        zip(geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation, out_shape)
    ):
        # o * stride = i + padding - k * dilation for kernel position k of this dimension
        shifted = indices[:, 1 + d].long().unsqueeze(0) + padding  # [1, N]
        if dilation == 1:  # the positions k = (i + padding) mod stride + t * stride, t < ceil(kernel / stride)
            steps = torch.arange(-(-kernel // stride), device=device).unsqueeze(1)
            position = shifted % stride + steps * stride
            out_coord = torch.div(shifted, stride, rounding_mode="floor") - steps
            valid_d = (position < kernel) & (out_coord >= 0) & (out_coord < extent)  # [c_d, N]
        else:
            position = torch.arange(kernel, device=device).unsqueeze(1).expand(-1, num_sites)
            scaled = shifted - position * dilation
            out_coord = torch.div(scaled, stride, rounding_mode="floor")
            valid_d = (scaled == out_coord * stride) & (out_coord >= 0) & (out_coord < extent)
        count = valid.shape[0] * valid_d.shape[0]  # the new dimension varies fastest
        valid = (valid.unsqueeze(1) & valid_d.unsqueeze(0)).reshape(count, num_sites)
        key = (key.unsqueeze(1) + (out_coord * out_strides[1 + d]).unsqueeze(0)).reshape(count, num_sites)
        offset = (offset.unsqueeze(1) + (position * kernel_strides[d]).unsqueeze(0)).reshape(count, num_sites)
    return valid, key, offset


def _build_strided_map(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry, batch_size: int | None = None
) -> KernelMap:
    """Pairs of a strided conv; outputs are the sorted unique output keys of all valid candidates (``torch.unique``
    sorts them itself: ``batch_size`` is accepted for the common builder signature and not needed)."""
    num_sites = indices.shape[0]
    out_shape = geometry.output_shape(spatial_shape)
    valid, key, offset = _strided_candidates(indices, out_shape, geometry)
    hits = valid.flatten().nonzero().squeeze(1)
    in_rows = hits % num_sites if num_sites else hits
    hit_offsets = offset.flatten()[hits]
    grouped = torch.argsort(hit_offsets * num_sites + in_rows)  # by offset, then input row (each pair once)
    hits, in_rows = hits[grouped], in_rows[grouped]
    counts = torch.bincount(hit_offsets, minlength=geometry.kernel_volume)
    unique_keys, out_rows = torch.unique(key.flatten()[hits], sorted=True, return_inverse=True)
    return KernelMap(
        geometry=geometry,
        in_indices=indices,
        out_indices=decode_coords(unique_keys, out_shape),
        in_spatial_shape=spatial_shape,
        out_spatial_shape=out_shape,
        built_pairs=Pairs(in_rows, out_rows, tuple(counts.tolist())),
    )


def number_distinct(
    keys: torch.Tensor, valid: torch.Tensor | None, capacity: int | None, key_bound: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Number the distinct valid ``keys`` in sorted order (a sync-free ``unique``): through a dense grid of
    ``key_bound + 1`` cells when ``key_bound`` is at most :data:`GRID_MAX_CELLS`, else by sorting the keys.

    Args:
        keys: ``[M]`` int64 non-negative keys (e.g. :func:`~sparse_ops.utils.encode_coords`).
        valid: ``[M]`` bool, the keys that count (padding rows, candidates outside the grid do not); None when
            the keys that do not count already hold :data:`PADDING_KEY`.
        capacity: number of output rows to allocate; None: exactly the distinct count (one device sync).
        key_bound: every valid key is below it (small bounds use the grid, and :func:`sort_keys` sorts 31-bit keys
            as int32); None: unknown.

    Returns:
        ``distinct [capacity]`` int64 (the sorted distinct keys, :data:`PADDING_KEY` past the count), ``ids [M]``
        int64 (each key's output row; ``capacity`` where invalid or past the capacity) and the exact count as a
        0-d int64 device tensor.
    """
    if _grid_applies(key_bound):
        return _distinct_by_grid(keys, valid, capacity, key_bound)
    return _distinct_by_sort(keys, valid, capacity, key_bound)


def _distinct_by_grid(
    keys: torch.Tensor, valid: torch.Tensor | None, capacity: int | None, key_bound: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`number_distinct` through a ``[key_bound + 1]`` bool occupancy grid (the last cell absorbs invalid
    keys): a key's row is the number of occupied cells before its own."""
    cells = keys.clamp(max=key_bound)  # PADDING_KEY: the spare cell
    if valid is not None:
        cells = cells.where(valid, key_bound)
    occupied = torch.zeros(key_bound + 1, dtype=torch.bool, device=keys.device).index_fill_(0, cells, True)
    count = occupied[:-1].sum()
    capacity = int(count) if capacity is None else capacity
    rank = torch.cumsum(occupied, 0, dtype=torch.int32)[cells].long() - 1  # [M]
    ids = rank.where(cells < key_bound, capacity).clamp_(max=capacity)
    distinct = torch.full((capacity + 1,), PADDING_KEY, dtype=torch.int64, device=keys.device)
    distinct[ids] = cells  # duplicates write the same key; invalid keys and ranks past the capacity: spare slot
    return distinct[:capacity], ids, count


def _distinct_by_sort(
    keys: torch.Tensor, valid: torch.Tensor | None, capacity: int | None, key_bound: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`number_distinct` by sorting: a key's row is the number of distinct keys sorted before it."""
    if valid is not None:
        keys = torch.where(valid, keys, PADDING_KEY)
    sorted_keys, order = sort_keys(keys, key_bound)  # invalid keys sort last
    present = sorted_keys != PADDING_KEY
    first = torch.ones_like(present)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first &= present
    count = first.sum()
    capacity = int(count) if capacity is None else capacity
    rank = (torch.cumsum(first, 0) - 1).where(present, capacity).clamp_(max=capacity)
    distinct = torch.full((capacity + 1,), PADDING_KEY, dtype=torch.int64, device=keys.device)
    distinct[rank.where(first, capacity)] = sorted_keys
    ids = torch.empty_like(rank)
    ids[order] = rank
    return distinct[:capacity], ids, count


def _build_strided_tables(
    indices: torch.Tensor, spatial_shape: tuple[int, ...], geometry: ConvGeometry, batch_size: int | None = None
) -> KernelMap:
    """Neighbour tables of a strided conv. Invalid candidates get a sentinel key that sorts last, so
    one sort numbers the outputs without masking (:func:`number_distinct`: a dense grid instead of the sort when
    ``batch_size`` is given and the output grid is small). The output count costs one device sync, except in
    padded execution (kmap/capacity.py), where the plan fixes the capacity and outputs past the
    count become padding rows."""
    num_sites = indices.shape[0]
    device = indices.device
    out_shape = geometry.output_shape(spatial_shape)
    if indices.is_cuda and triton_available() and len(out_shape) in (2, 3):  # one kernel instead of ~30 launches
        from sparse_ops.kmap.triton_candidates import strided_candidates

        key, offset = strided_candidates(indices, out_shape, geometry, PADDING_KEY)
    else:
        valid, key, offset = _strided_candidates(indices, out_shape, geometry)
        key = key.where(valid, PADDING_KEY)
    plan = active_plan()
    capacity = None if plan is None else plan.next_capacity()
    key_bound = _key_bound(batch_size, out_shape)
    unique_keys, ids, count = number_distinct(key.flatten(), None, capacity, key_bound)
    if plan is not None:
        plan.record(count)
    num_out = unique_keys.shape[0]
    out_row = ids.view_as(key)  # [C, N]; num_out where there is no output
    lands = out_row < num_out
    num_offsets = geometry.kernel_volume
    offset = offset.where(lands, 0)  # candidates without an output all write the spare row / slot
    sites = torch.arange(num_sites, device=device)
    forward = torch.full(((num_out + 1) * num_offsets,), -1, dtype=torch.int32, device=device)
    forward[out_row * num_offsets + offset] = sites.int().expand_as(key)
    backward = torch.full((num_sites * num_offsets + 1,), -1, dtype=torch.int32, device=device)
    backward[(sites * num_offsets + offset).where(lands, num_sites * num_offsets)] = out_row.int()
    out_indices = decode_coords(unique_keys, out_shape).where((unique_keys != PADDING_KEY).unsqueeze(1), -1)
    return KernelMap(
        geometry=geometry,
        in_indices=indices,
        out_indices=out_indices,
        in_spatial_shape=spatial_shape,
        out_spatial_shape=out_shape,
        built_tables=NeighborTables(
            forward.view(num_out + 1, num_offsets)[:num_out],
            backward[:-1].view(num_sites, num_offsets),
        ),
    )
