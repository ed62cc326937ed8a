"""Ada3D's column ops and height compression in padded execution (as CUDA graphs run them): padding rows are
ignored, drops pack the kept sites into the plan's capacity and record the exact count, nothing syncs with the host,
and with the padding stripped every result equals eager execution."""

from __future__ import annotations

import pytest
import torch

from ada3d.models.adaptive.column_ops import cell_counts, drop_columns, drop_pixels, occupancy, pool_to_grid
from ada3d.models.adaptive.height_compression import to_bev
from ada3d.models.adaptive.spatial_filter import SpatialFilter
from ada3d.models.backbones.sparse_second import SparseSECOND
from sparse_ops import SparseTensor
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from tests.ada3d.adaptive.host_syncs import forbid_host_syncs
from tests.ada3d.adaptive.test_column_ops import random_sparse

GRID = (4, 5)
SHAPES = {3: (3, 16, 20), 2: GRID}  # 3D sites at factor 4 of the importance grid, 2D sites on it
DROPS = {3: drop_columns, 2: drop_pixels}


def padded(x: SparseTensor, extra_rows: int, seed: int = 1) -> SparseTensor:
    """``x`` with ``extra_rows`` padding rows (batch -1, random features) shuffled in between its sites."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(extra_rows, x.num_channels, generator=generator, dtype=x.features.dtype)
    features = torch.cat([x.features, noise])
    indices = torch.cat([x.indices, torch.full((extra_rows, x.indices.shape[1]), -1, dtype=torch.int32)])
    order = torch.randperm(features.shape[0], generator=generator)
    return SparseTensor(features[order], indices[order], x.spatial_shape, x.batch_size, validate=False)


def stripped(x: SparseTensor) -> SparseTensor:
    """``x`` without its padding rows, the other rows in their order."""
    valid = x.indices[:, 0] >= 0
    return SparseTensor(x.features[valid], x.indices[valid], x.spatial_shape, x.batch_size)


def double(x: SparseTensor) -> SparseTensor:
    return x.replace_feature(x.features.double())


def sites(ndim: int, seed: int = 0) -> SparseTensor:
    """Sparse sites of 3 samples, the last one empty."""
    return double(random_sparse(SHAPES[ndim], 3, 150 if ndim == 3 else 25, channels=4, seed=seed, empty=(2,)))


def keep_mask(ndim: int) -> torch.Tensor:
    x = sites(ndim)
    return occupancy(x, GRID) & (torch.rand((3, *GRID), generator=torch.Generator().manual_seed(3)) < 0.5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_occupancy_pooling_and_site_counts_ignore_padding_rows(ndim):
    x = sites(ndim)
    y = padded(x, 17)
    with padded_execution(CapacityPlan([])):
        assert torch.equal(occupancy(y, GRID), occupancy(x, GRID))
        torch.testing.assert_close(pool_to_grid(y, GRID), pool_to_grid(x, GRID), rtol=1e-14, atol=0)
        assert torch.equal(cell_counts(y, GRID), cell_counts(x, GRID))


@pytest.mark.parametrize("ndim", [2, 3])
def test_drop_packs_the_kept_sites_in_order_into_the_capacity(ndim):
    x, keep = padded(sites(ndim), 11), keep_mask(ndim)
    expected = DROPS[ndim](stripped(x), keep)
    count = expected.indices.shape[0]
    plan = CapacityPlan([count + 9])
    with padded_execution(plan):
        out = DROPS[ndim](x, keep)
    assert out.indices.shape[0] == count + 9 and int(plan.counts[0]) == count
    assert torch.equal(out.indices[:count], expected.indices)  # eager's rows, in eager's order
    assert torch.equal(out.features[:count], expected.features)
    assert (out.indices[count:] == -1).all() and (out.features[count:] == 0).all()


@pytest.mark.parametrize("ndim", [2, 3])
def test_learning_sizes_a_drop_exactly_and_a_small_capacity_shows_in_the_count(ndim):
    x, keep = padded(sites(ndim), 5), keep_mask(ndim)
    expected = DROPS[ndim](stripped(x), keep)
    learning = CapacityPlan()
    with padded_execution(learning):
        exact = DROPS[ndim](x, keep)
    assert torch.equal(exact.indices, expected.indices) and torch.equal(exact.features, expected.features)
    small = CapacityPlan([3])
    with padded_execution(small):
        truncated = DROPS[ndim](x, keep)
    assert int(small.counts[0]) == expected.indices.shape[0] > 3
    assert torch.equal(truncated.indices, expected.indices[:3])


def test_a_drop_never_allocates_more_rows_than_its_bound():
    x, keep = sites(2), keep_mask(2)
    y = padded(x, 6)
    with padded_execution(CapacityPlan([10_000, 10_000])):
        assert drop_pixels(y, keep).indices.shape[0] == y.indices.shape[0]  # a drop keeps at most its input's rows
        assert drop_pixels(y, keep, max_kept=20).indices.shape[0] == 20


def test_to_bev_numbers_the_columns_into_the_capacity():
    x = sites(3)
    expected = to_bev(x)
    count = expected.indices.shape[0]
    plan = CapacityPlan([count + 4])
    with padded_execution(plan):
        out = to_bev(padded(x, 13))
        dense = out.dense()
    assert int(plan.counts[0]) == count and out.indices.shape[0] == count + 4
    assert torch.equal(out.indices[:count], expected.indices)  # sorted columns, as eager
    assert torch.equal(out.features[:count], expected.features)
    assert (out.indices[count:] == -1).all() and (out.features[count:] == 0).all()
    assert torch.equal(dense, expected.dense())
    small = CapacityPlan([count - 2])
    with padded_execution(small):
        truncated = to_bev(padded(x, 13))
    assert int(small.counts[0]) == count and torch.equal(truncated.indices, expected.indices[: count - 2])


@pytest.mark.parametrize("dilating_convs", [None, (2, 1)])
@pytest.mark.parametrize("execution", ["sparse", "dense"])
def test_sparse_second_ignores_padding_rows(execution, dilating_convs):
    torch.manual_seed(0)
    backbone = SparseSECOND(4, (6, 8), (1, 1), (1, 2), execution=execution, dilating_convs=dilating_convs)
    backbone = backbone.double().eval()
    x = double(random_sparse((8, 10), 2, 30, channels=4, seed=2))
    with torch.no_grad():
        expected = backbone(x)
        learning = CapacityPlan()
        with padded_execution(learning):
            backbone(padded(x, 7))
        with padded_execution(CapacityPlan([int(c) + 5 for c in learning.counts])):
            maps = backbone(padded(x, 7))
    for out, reference in zip(maps, expected):
        torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)


def test_padded_ops_never_sync_with_the_host(monkeypatch):
    x3, x2 = padded(sites(3), 9), padded(sites(2), 9)
    keep = keep_mask(3)
    spatial_filter = SpatialFilter(density_prior=dict(kernel=3))
    with padded_execution(CapacityPlan([512, 512, 512])), forbid_host_syncs(monkeypatch):
        occupied = occupancy(x3, GRID)
        importance = pool_to_grid(x3, GRID)[:, 0].sigmoid()
        cell_counts(x3, GRID)
        kept = spatial_filter.select(spatial_filter.scores(importance, occupied), occupied, 0.5)
        drop_columns(x3, kept)
        drop_pixels(x2, keep)
        to_bev(x3)
    with forbid_host_syncs(monkeypatch), pytest.raises(AssertionError, match="host sync"):
        drop_columns(x3, keep)  # eager execution syncs (boolean-mask indexing): the guard sees it
