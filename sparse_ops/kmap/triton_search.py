"""Submanifold neighbour tables in one Triton kernel (import only where Triton is installed).

The torch builder (:func:`sparse_ops.kmap.kernel_map._build_submanifold_tables`) materialises ``[K, N]`` int64
queries, positions, gathered keys and masks, then transposes and scatters them: about ten passes over
``K x N`` values. This kernel reads the sorted site keys and writes the ``[N, K]`` table once: each program
takes a block of sites in key order and, for every kernel offset, finds the neighbour's key by binary search.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 128


@triton.jit
def _neighbor_search_kernel(
    sorted_keys_ptr,
    order_ptr,
    deltas_ptr,
    table_ptr,
    num_sites,
    padding_key,
    SEARCH_STEPS: tl.constexpr,
    NUM_OFFSETS: tl.constexpr,
    RUN_LENGTH: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """``table[order[p], k] = order[q]`` where ``sorted_keys[q] == sorted_keys[p] + deltas[k]``, else -1.

    Offsets come in runs of ``RUN_LENGTH`` whose key deltas increase by one (the last kernel dimension at
    dilation 1): only a run's first offset is searched, the next position is the previous one plus one if
    the previous key was found (the keys are distinct integers). ``SEARCH_STEPS`` (``N.bit_length()``, a
    constant so the search loop has a fixed trip count) compiles one variant per power-of-two size.
    """
    positions = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_range = positions < num_sites
    keys = tl.load(sorted_keys_ptr + positions, mask=in_range, other=padding_key)
    rows = tl.load(order_ptr + positions, mask=in_range, other=0)
    active = in_range & (keys != padding_key)  # padding rows have no neighbours
    found = tl.zeros((BLOCK,), dtype=tl.int1)
    low = tl.zeros((BLOCK,), dtype=tl.int64)
    for k in tl.static_range(NUM_OFFSETS):  # unrolled: whether an offset starts a run is known when compiling
        query = keys + tl.load(deltas_ptr + k)
        if k % RUN_LENGTH == 0:  # lower bound of the query by binary search
            low = tl.zeros((BLOCK,), dtype=tl.int64)
            high = tl.zeros((BLOCK,), dtype=tl.int64) + num_sites
            for _ in range(SEARCH_STEPS):
                middle = (low + high) // 2
                searching = active & (low < high)
                below = tl.load(sorted_keys_ptr + middle, mask=searching, other=padding_key) < query
                low = tl.where(searching & below, middle + 1, low)
                high = tl.where(searching & ~below, middle, high)
        else:  # the next key of the run
            low = low + found.to(tl.int64)
        hit_ok = active & (low < num_sites)
        found = hit_ok & (tl.load(sorted_keys_ptr + low, mask=hit_ok, other=padding_key) == query)
        source = tl.load(order_ptr + low, mask=found, other=-1)
        tl.store(table_ptr + rows * NUM_OFFSETS + k, source.to(tl.int32), mask=in_range)


def neighbor_table(sorted_keys: torch.Tensor, order: torch.Tensor, key_deltas: torch.Tensor, run_length: int,
                   padding_key: int) -> torch.Tensor:
    """The ``[N, K]`` int32 neighbour table of sites whose keys, sorted, are ``sorted_keys``.

    Args:
        sorted_keys: ``[N]`` int64 distinct site keys in ascending order, ``padding_key`` (sorting last) for
            padding rows.
        order: ``[N]`` int64, the site row of each sorted key.
        key_deltas: ``[K]`` int64, the key difference between a site and its neighbour through each offset.
        run_length: offsets come in runs of this many consecutive key deltas (1 if they do not).
        padding_key: the key of padding rows, which get no neighbours and are nobody's neighbour.

    Returns:
        ``table[r, k]``: the row of the site at key ``key(r) + key_deltas[k]``, or -1.
    """
    num_sites, num_offsets = sorted_keys.shape[0], key_deltas.shape[0]
    table = torch.empty((num_sites, num_offsets), dtype=torch.int32, device=sorted_keys.device)
    if num_sites == 0:
        return table
    _neighbor_search_kernel[(triton.cdiv(num_sites, _BLOCK),)](
        sorted_keys, order, key_deltas, table, num_sites, padding_key,
        SEARCH_STEPS=num_sites.bit_length(), NUM_OFFSETS=num_offsets, RUN_LENGTH=run_length, BLOCK=_BLOCK,
    )  # fmt: skip
    return table
