"""Kernel maps numbered through a dense index grid (small grids) equal the sort-based ones exactly."""

from __future__ import annotations

import pytest
import torch

from sparse_ops.kmap import build_kernel_map, kernel_map
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.kmap.kernel_map import PADDING_KEY, number_distinct
from tests.sparse_ops.cases import random_sparse_tensor

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]
SHAPES = {2: (13, 11), 3: (6, 7, 5)}
# (batch size, the sample left empty or None)
BATCHES = [(1, None), (3, None), (3, 1), (3, 2)]


@pytest.fixture
def sort_calls(monkeypatch) -> list[int]:
    """Counts the calls of ``kernel_map.sort_keys`` (one entry per call)."""
    calls = []
    real_sort_keys = kernel_map.sort_keys

    def spy(*args, **kwargs):
        calls.append(1)
        return real_sort_keys(*args, **kwargs)

    monkeypatch.setattr(kernel_map, "sort_keys", spy)
    return calls


def _indices(ndim: int, batch_size: int, empty_sample: int | None, padding_rows: int, device: str) -> torch.Tensor:
    """``[N, 1 + ndim]`` int32 random sites on ``SHAPES[ndim]`` with ``padding_rows`` rows of -1 mixed in."""
    indices = random_sparse_tensor(SHAPES[ndim], batch_size, 1, density=0.3, seed=ndim * 10 + batch_size).indices
    if empty_sample is not None:
        indices = indices[indices[:, 0] != empty_sample]
    indices = torch.cat([indices, torch.full((padding_rows, 1 + ndim), -1, dtype=torch.int32)])
    return indices[torch.randperm(indices.shape[0], generator=torch.Generator().manual_seed(3))].to(device)


def _geometry(ndim: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> ConvGeometry:
    return ConvGeometry.create(ndim, kernel, stride, padding, dilation, subm=stride == 1 and padding == 0)


def _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, grid: bool, capacity: int | None = None):
    """The tables-layout map, forcing the grid (``grid``) or the sort path and checking which one ran."""
    monkeypatch.setattr(kernel_map, "GRID_MAX_CELLS", 1 << 22 if grid else 0)
    sort_calls.clear()
    plan = CapacityPlan(None if capacity is None else [capacity])
    with padded_execution(plan):
        kmap = build_kernel_map(indices, SHAPES[ndim], geometry, layout="tables", batch_size=batch_size)
    assert (len(sort_calls) == 0) == grid
    return kmap, plan


def _assert_same_maps(a, b) -> None:
    assert torch.equal(a.out_indices, b.out_indices)
    assert a.tables.forward.dtype == torch.int32 and torch.equal(a.tables.forward, b.tables.forward)
    assert a.tables.backward.dtype == torch.int32 and torch.equal(a.tables.backward, b.tables.backward)
    assert a.identity_offset == b.identity_offset


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padding_rows", [0, 5])
@pytest.mark.parametrize(("batch_size", "empty_sample"), BATCHES)
@pytest.mark.parametrize(("kernel", "dilation"), [(3, 1), (2, 1), (3, 2)])
@pytest.mark.parametrize("ndim", [2, 3])
def test_submanifold_grid_tables_equal_sorted_tables(
    monkeypatch, sort_calls, ndim, kernel, dilation, batch_size, empty_sample, padding_rows, device
):
    indices = _indices(ndim, batch_size, empty_sample, padding_rows, device)
    geometry = _geometry(ndim, kernel, dilation=dilation)
    grid, _ = _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, grid=True)
    sorted_, _ = _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, grid=False)
    _assert_same_maps(grid, sorted_)
    padding = indices[:, 0] < 0
    assert (grid.tables.forward[padding] == -1).all() and (grid.tables.backward[padding] == -1).all()
    assert not torch.isin(grid.tables.forward, padding.nonzero().int()).any()  # nobody finds a padding row


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("padding_rows", [0, 5])
@pytest.mark.parametrize(("batch_size", "empty_sample"), BATCHES)
@pytest.mark.parametrize(("kernel", "stride", "padding"), [(3, 2, 1), (2, 2, 0)])
@pytest.mark.parametrize("ndim", [2, 3])
def test_strided_grid_tables_equal_sorted_tables(
    monkeypatch, sort_calls, ndim, kernel, stride, padding, batch_size, empty_sample, padding_rows, device
):
    indices = _indices(ndim, batch_size, empty_sample, padding_rows, device)
    geometry = _geometry(ndim, kernel, stride, padding)
    exact, learned = _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, grid=True)
    count = int(learned.counts[0])
    assert exact.num_out == count
    for capacity in (None, count - 3, count, count + 4):  # below, at and above the output count
        grid, grid_plan = _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, True, capacity)
        sorted_, sorted_plan = _build(monkeypatch, sort_calls, indices, ndim, geometry, batch_size, False, capacity)
        _assert_same_maps(grid, sorted_)
        assert int(grid_plan.counts[0]) == int(sorted_plan.counts[0]) == count


def _random_keys(device: str) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``[300]`` int64 keys below 64 with repeats, ``[300]`` bool validity (invalid keys hold garbage, negative
    ones included), and the key bound 64."""
    generator = torch.Generator().manual_seed(0)
    keys = torch.randint(0, 64, (300,), generator=generator)
    valid = torch.rand(300, generator=generator) < 0.7
    keys = keys.where(valid, torch.randint(-50, 64, (300,), generator=generator))
    return keys.to(device), valid.to(device), 64


def _number_both(monkeypatch, sort_calls, keys, valid, capacity, key_bound):
    """number_distinct through the grid and through the sort, checking which path ran."""
    results = []
    for grid in (True, False):
        monkeypatch.setattr(kernel_map, "GRID_MAX_CELLS", 1 << 22 if grid else 0)
        sort_calls.clear()
        results.append(number_distinct(keys, valid, capacity, key_bound))
        assert (len(sort_calls) == 0) == grid
    return results


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("capacity_delta", [None, -5, 0, 5])
@pytest.mark.parametrize("invalid_as", ["mask", "padding_key"])
def test_number_distinct_grid_equals_sort(monkeypatch, sort_calls, capacity_delta, invalid_as, device):
    keys, valid, key_bound = _random_keys(device)
    expected_keys, expected_ids = torch.unique(keys[valid], return_inverse=True)
    count = expected_keys.shape[0]
    capacity = None if capacity_delta is None else count + capacity_delta
    if invalid_as == "padding_key":
        keys, valid = keys.where(valid, PADDING_KEY), None
    grid, sorted_ = _number_both(monkeypatch, sort_calls, keys, valid, capacity, key_bound)
    for a, b in zip(grid, sorted_):
        assert a.dtype == b.dtype == torch.int64 and a.shape == b.shape and torch.equal(a, b)
    distinct, ids, grid_count = grid
    size = count if capacity is None else capacity
    assert int(grid_count) == count and distinct.shape == (size,)
    shown = min(size, count)
    assert torch.equal(distinct[:shown], expected_keys[:shown]) and (distinct[shown:] == PADDING_KEY).all()
    is_valid = keys != PADDING_KEY if valid is None else valid
    assert torch.equal(ids[is_valid], expected_ids.clamp(max=size)) and (ids[~is_valid] == size).all()


@pytest.mark.parametrize("capacity", [None, 0, 3])
def test_number_distinct_grid_without_keys(monkeypatch, sort_calls, capacity):
    keys = torch.empty(0, dtype=torch.int64)
    grid, sorted_ = _number_both(monkeypatch, sort_calls, keys, None, capacity, 10)
    for a, b in zip(grid, sorted_):
        assert a.dtype == b.dtype == torch.int64 and torch.equal(a, b)
    assert int(grid[2]) == 0


def test_grid_is_used_only_for_small_known_bounds(sort_calls):
    geometry = _geometry(3, 3)
    small = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 4]], dtype=torch.int32)
    build_kernel_map(small, (6, 7, 5), geometry, layout="tables", batch_size=1)
    assert not sort_calls
    build_kernel_map(small, (6, 7, 5), geometry, layout="tables")  # unknown batch size: no bound
    assert len(sort_calls) == 1
    build_kernel_map(small, (200, 200, 200), geometry, layout="tables", batch_size=1)  # 202^3 cells > 2^22
    assert len(sort_calls) == 2
    keys = torch.tensor([5, 3, 5])
    number_distinct(keys, None, None, kernel_map.GRID_MAX_CELLS)
    assert len(sort_calls) == 2
    number_distinct(keys, None, None, kernel_map.GRID_MAX_CELLS + 1)
    assert len(sort_calls) == 3
