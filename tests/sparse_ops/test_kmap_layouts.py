"""Kernel maps built as pairs (CPU default) and as neighbour tables (GPU default) hold the same map,
and each layout derives the other exactly. The dense-oracle tests validate the pairs layout."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from sparse_ops.kmap import build_kernel_map
from sparse_ops.kmap.kernel_map import PADDING_KEY, _neighbor_table, _sorted_site_keys, _strided_candidates, sort_keys
from tests.sparse_ops.cases import case_conv, case_tensor, conv_cases


def _triples(kmap) -> set[tuple[int, int, int]]:
    offsets = torch.repeat_interleave(torch.arange(len(kmap.offset_counts)), torch.tensor(kmap.offset_counts))
    return set(zip(kmap.in_rows.tolist(), kmap.out_rows.tolist(), offsets.tolist()))


@settings(max_examples=80, deadline=None)
@given(case=conv_cases())
def test_pairs_and_tables_layouts_agree(case):
    x = case_tensor(case)
    for subm in (False, True):
        geometry = case_conv(case, subm).geometry
        from_pairs = build_kernel_map(x.indices, x.spatial_shape, geometry, layout="pairs")
        from_tables = build_kernel_map(x.indices, x.spatial_shape, geometry, layout="tables")
        assert from_pairs.built_tables is None and from_tables.built_pairs is None
        assert torch.equal(from_pairs.out_indices, from_tables.out_indices)
        assert _triples(from_pairs) == _triples(from_tables)  # pairs derived from tables
        assert torch.equal(from_pairs.tables.forward, from_tables.tables.forward)  # tables derived from pairs
        assert torch.equal(from_pairs.tables.backward, from_tables.tables.backward)
        assert from_pairs.identity_offset == from_tables.identity_offset
        for layout in ("pairs", "tables"):  # 31-bit keys sorted as int32: the same map
            narrow = build_kernel_map(x.indices, x.spatial_shape, geometry, layout=layout, batch_size=x.batch_size)
            assert torch.equal(narrow.out_indices, from_tables.out_indices)
            assert torch.equal(narrow.tables.forward, from_tables.tables.forward)
        inverse = from_tables.transpose()
        assert torch.equal(inverse.tables.forward, from_tables.tables.backward)
        assert _triples(inverse) == {(o, i, k) for i, o, k in _triples(from_tables)}


def test_unknown_layout_raises():
    x = case_tensor(dict(spatial_shape=(4, 4), batch_size=1, in_channels=1, density=0.5, seed=0))
    with pytest.raises(ValueError, match="layout must be"):
        build_kernel_map(x.indices, x.spatial_shape, case_conv(
            dict(ndim=2, in_channels=1, out_channels=1, kernel_size=3, stride=1, padding=0, dilation=1, bias=False)
        ).geometry, layout="csr")  # fmt: skip


@pytest.mark.parametrize("key_bound", [None, 1000, 2**31 - 1, 2**40])
def test_sort_keys_matches_torch_sort_with_padding_keys_last(key_bound):
    generator = torch.Generator().manual_seed(0)
    high = 1000 if key_bound in (None, 1000) else key_bound
    keys = torch.randint(0, high, (500,), generator=generator)
    keys[torch.randperm(500, generator=generator)[:50]] = PADDING_KEY
    sorted_keys, order = sort_keys(keys, key_bound)
    assert sorted_keys.dtype == torch.int64 and torch.equal(sorted_keys, torch.sort(keys).values)
    assert torch.equal(keys[order], sorted_keys) and (sorted_keys[-50:] == PADDING_KEY).all()


@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_triton_neighbor_search_matches_the_torch_tables(case):
    """The one-kernel GPU neighbour search (run here in Triton's interpreter without a GPU) against the torch
    builder, with padding rows, on every dilation (runs of consecutive offsets only at dilation 1)."""
    pytest.importorskip("triton")
    from sparse_ops.kmap.triton_search import neighbor_table

    x = case_tensor(case)
    geometry = case_conv(case, subm=True).geometry
    indices = torch.cat([x.indices, torch.full((3, x.indices.shape[1]), -1, dtype=torch.int32)])  # padding rows
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sorted_keys, order, deltas = _sorted_site_keys(indices.to(device), x.spatial_shape, geometry, x.batch_size)
    expected = _neighbor_table(sorted_keys, order, deltas)
    run_length = geometry.kernel_size[-1] if geometry.dilation[-1] == 1 else 1
    for run in {run_length, 1}:
        table = neighbor_table(sorted_keys, order, deltas, run, PADDING_KEY)
        assert table.dtype == torch.int32 and torch.equal(table, expected)
    assert (expected[-3:] == -1).all()


@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_triton_strided_candidates_match_the_torch_candidates(case):
    """The one-kernel GPU candidates of a strided conv (in Triton's interpreter without a GPU) against the torch
    version, with padding rows, on every stride / padding / dilation the cases draw."""
    pytest.importorskip("triton")
    from sparse_ops.kmap.triton_candidates import strided_candidates

    x = case_tensor(case)
    geometry = case_conv(case).geometry
    indices = torch.cat([x.indices, torch.full((3, x.indices.shape[1]), -1, dtype=torch.int32)])  # padding rows
    device = "cuda" if torch.cuda.is_available() else "cpu"
    out_shape = geometry.output_shape(x.spatial_shape)
    valid, key, offset = _strided_candidates(indices.to(device), out_shape, geometry)
    triton_key, triton_offset = strided_candidates(indices.to(device), out_shape, geometry, PADDING_KEY)
    assert torch.equal(triton_key, key.where(valid, PADDING_KEY))
    assert torch.equal(triton_offset.where(valid, -1), offset.where(valid, -1))  # offsets matter where they land
    assert (triton_key[:, -3:] == PADDING_KEY).all()
