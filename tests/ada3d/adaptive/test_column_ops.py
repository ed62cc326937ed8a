"""column_ops: pooling to the importance grid, occupancy, dropping voxel columns and BEV pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ada3d.models.adaptive.column_ops import (
    _count,
    cell_counts,
    drop_columns,
    drop_pixels,
    encode_pool_rows,
    max_pool_rows,
    occupancy,
    pool_rows,
    pool_to_grid,
    site_cells,
)
from sparse_ops import SparseTensor


def random_sparse(
    spatial_shape: tuple[int, ...], batch_size: int, num_sites: int, channels: int = 3, seed: int = 0, empty=()
) -> SparseTensor:
    """Unique random sites (none in the samples listed in ``empty``) with random features."""
    generator = torch.Generator().manual_seed(seed)
    volume = 1
    for extent in spatial_shape:
        volume *= extent
    keys = torch.randperm(batch_size * volume, generator=generator)[:num_sites]
    coords, rest = [], keys
    for extent in reversed(spatial_shape):
        coords.append(rest % extent)
        rest = rest // extent
    indices = torch.stack([rest, *coords[::-1]], dim=1)
    indices = indices[~torch.isin(indices[:, 0], torch.tensor(list(empty), dtype=torch.long))]
    features = torch.randn(indices.shape[0], channels, generator=generator)
    return SparseTensor(features, indices.int(), spatial_shape, batch_size)


def reference_cell_rows(x: SparseTensor, factor: int) -> list[tuple[int, int, int]]:
    """Each site's importance cell ``(b, row, col)``, one site at a time."""
    return [(int(i[0]), int(i[-2]) // factor, int(i[-1]) // factor) for i in x.indices]


def dense_pool_reference(x: SparseTensor, factor: int, grid_shape: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Sum and count of the sites of each cell from the dense grid, padded to whole cells."""
    height, width = grid_shape
    dense = x.dense()  # [B, C, (D,) Y, X]
    active = torch.zeros(x.batch_size, 1, *x.spatial_shape)
    batch_index, *spatial_index = x.indices.long().unbind(1)
    active[(batch_index, 0, *spatial_index)] = 1
    if x.ndim == 2:
        dense, active = dense[:, :, None], active[:, :, None]
    pad = (0, width * factor - dense.shape[-1], 0, height * factor - dense.shape[-2])
    dense, active = F.pad(dense, pad), F.pad(active, pad)
    batch, channels, depth = dense.shape[:3]
    sums = dense.view(batch, channels, depth, height, factor, width, factor).sum(dim=(2, 4, 6))
    counts = active.view(batch, 1, depth, height, factor, width, factor).sum(dim=(2, 4, 6))
    return sums, counts


@pytest.mark.parametrize(
    ("spatial_shape", "grid_shape", "factor"),
    [((5, 16, 12), (4, 3), 4), ((3, 15, 13), (4, 4), 4), ((2, 6, 6), (6, 6), 1), ((16, 10), (2, 2), 8)],
)
def test_pool_to_grid_and_occupancy_match_a_dense_reference(spatial_shape, grid_shape, factor):
    x = random_sparse(spatial_shape, batch_size=3, num_sites=120, channels=4, empty=(1,))
    factors = (factor, factor) if factor == 8 else None  # (16, 10) -> (2, 2) also fits r = 5 in x: say which
    pooled = pool_to_grid(x, grid_shape, factors=factors)
    sums, counts = dense_pool_reference(x, factor, grid_shape)
    assert pooled.shape == (3, 4, *grid_shape) and pooled.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(pooled, sums / counts.clamp(min=1))
    occupied = occupancy(x, grid_shape, factors=factors)
    assert torch.equal(occupied, counts[:, 0] > 0)
    assert torch.equal(cell_counts(x, grid_shape, factors=factors), counts[:, 0].long())
    assert pooled[1].abs().sum() == 0 and not occupied[1].any()


def test_cells_computed_once_serve_every_op_and_must_fit_the_sites():
    x = random_sparse((5, 16, 12), batch_size=3, num_sites=120, channels=4, seed=8)
    cells = site_cells(x, (4, 3))
    torch.testing.assert_close(pool_to_grid(x, (4, 3), cells=cells), pool_to_grid(x, (4, 3)), rtol=0, atol=0)
    # counts computed once (as a drop does) serve the mean pooling too
    counts = cell_counts(x, (4, 3), cells=cells)
    torch.testing.assert_close(pool_to_grid(x, (4, 3), cells=cells, counts=counts), pool_to_grid(x, (4, 3)), rtol=0,
                               atol=0)  # fmt: skip
    torch.testing.assert_close(pool_to_grid(x, (4, 3), cells=cells, counts=2 * counts), pool_to_grid(x, (4, 3)) / 2)
    weight, bias = torch.randn(8, 4), torch.randn(8)
    torch.testing.assert_close(encode_pool_rows(x.features, weight, bias, cells, 3, (4, 3), counts),
                               encode_pool_rows(x.features, weight, bias, cells, 3, (4, 3)), rtol=0, atol=0)
    assert torch.equal(occupancy(x, (4, 3), cells=cells), occupancy(x, (4, 3)))
    keep = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(9)) < 0.5
    assert torch.equal(drop_columns(x, keep, cells=cells).indices, drop_columns(x, keep).indices)
    with pytest.raises(ValueError, match="cells must hold one cell per site, got \\(119,\\) for 120 sites"):
        occupancy(x, (4, 3), cells=cells[1:])
    with pytest.raises(ValueError, match="pool_rows needs one cell per row"):
        pool_rows(x.features, cells[1:], 3, (4, 3))


def test_explicit_factors_clip_cells_beyond_the_grid():
    indices = torch.tensor([[0, 0, 0], [0, 15, 9], [1, 7, 3]], dtype=torch.int32)
    x = SparseTensor(torch.ones(3, 1), indices, (16, 10), 2)
    assert site_cells(x, (2, 2), factors=(4, 4)).tolist() == [0, 3, 6]


def test_pool_to_grid_is_differentiable():
    x = random_sparse((4, 8, 8), batch_size=2, num_sites=40)
    features = x.features.clone().requires_grad_()
    pooled = pool_to_grid(x.replace_feature(features), (2, 2))
    pooled.sum().backward()
    counts = torch.bincount(site_cells(x, (2, 2)), minlength=8).float()
    torch.testing.assert_close(features.grad, (1 / counts[site_cells(x, (2, 2))])[:, None].expand(-1, 3))


def test_drop_columns_keeps_exactly_the_sites_of_kept_cells_with_their_features():
    x = random_sparse((5, 16, 12), batch_size=3, num_sites=200, channels=2, seed=1, empty=(2,))
    keep = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(3)) < 0.5
    dropped = drop_columns(x, keep)
    expected = torch.tensor([bool(keep[cell]) for cell in reference_cell_rows(x, 4)])
    assert torch.equal(dropped.indices, x.indices[expected])
    assert torch.equal(dropped.features, x.features[expected])
    assert dropped.spatial_shape == x.spatial_shape and dropped.batch_size == 3
    assert dropped.kernel_maps is not x.kernel_maps
    # whole columns: a kept (b, y, x) column keeps every z
    columns = {tuple(i) for i in x.indices[:, [0, 2, 3]].tolist()}
    kept = {tuple(i) for i in dropped.indices[:, [0, 2, 3]].tolist()}
    for b, y, xx in columns:
        assert ((b, y, xx) in kept) == bool(keep[b, y // 4, xx // 4])
    # the counts a drop records: the kept cells' sites are the sites left
    counts = cell_counts(x, (4, 3))
    assert cell_counts(dropped, (4, 3)).flatten(1).sum(1).tolist() == [int(expected[x.indices[:, 0] == b].sum())
                                                                       for b in range(3)]
    assert torch.equal(counts.where(keep, 0).flatten(1).sum(1), cell_counts(dropped, (4, 3)).flatten(1).sum(1))


def test_drop_columns_lets_gradients_reach_the_kept_features():
    x = random_sparse((5, 16, 12), batch_size=2, num_sites=60, seed=2)
    features = x.features.clone().requires_grad_()
    keep = torch.zeros(2, 4, 3, dtype=torch.bool)
    keep[0, 1:] = True
    drop_columns(x.replace_feature(features), keep).features.sum().backward()
    expected = torch.tensor([bool(keep[cell]) for cell in reference_cell_rows(x, 4)])
    assert torch.equal(features.grad[:, 0] == 1, expected)


def test_drop_pixels_on_a_bev_tensor():
    x = random_sparse((8, 8), batch_size=2, num_sites=50, seed=4)
    keep = torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(5)) < 0.3
    dropped = drop_pixels(x, keep)
    expected = keep[tuple(x.indices.long().unbind(1))]
    assert torch.equal(dropped.indices, x.indices[expected])
    assert torch.equal(dropped.features, x.features[expected])
    assert torch.equal(occupancy(dropped, (8, 8)), occupancy(x, (8, 8)) & keep)


def test_everything_dropped_and_an_empty_input_give_empty_tensors():
    x = random_sparse((5, 16, 12), batch_size=2, num_sites=30)
    nothing = drop_columns(x, torch.zeros(2, 4, 3, dtype=torch.bool))
    assert nothing.features.shape == (0, 3) and nothing.indices.shape == (0, 4)
    assert cell_counts(nothing, (4, 3)).sum() == 0
    assert pool_to_grid(nothing, (4, 3)).abs().sum() == 0
    assert not occupancy(nothing, (4, 3)).any()
    assert drop_columns(nothing, torch.ones(2, 4, 3, dtype=torch.bool)).features.shape == (0, 3)


def test_wrong_inputs_fail_loudly():
    x3d = random_sparse((5, 16, 12), batch_size=2, num_sites=30)
    x2d = random_sparse((16, 12), batch_size=2, num_sites=30)
    with pytest.raises(ValueError, match="expected a 3D sparse tensor"):
        drop_columns(x2d, torch.ones(2, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="expected a 2D sparse tensor"):
        drop_pixels(x3d, torch.ones(2, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"keep must be a bool \[B=2, H, W\]"):
        drop_columns(x3d, torch.ones(3, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="not an integer downsampling"):
        pool_to_grid(x3d, (5, 3))


@pytest.mark.gpu
def test_cuda_matches_cpu():
    x = random_sparse((5, 16, 12), batch_size=3, num_sites=200, channels=4, seed=6, empty=(0,))
    gpu = SparseTensor(x.features.cuda(), x.indices.cuda(), x.spatial_shape, x.batch_size)
    keep = torch.rand(3, 4, 3, generator=torch.Generator().manual_seed(7)) < 0.5
    torch.testing.assert_close(pool_to_grid(gpu, (4, 3)).cpu(), pool_to_grid(x, (4, 3)))
    assert torch.equal(occupancy(gpu, (4, 3)).cpu(), occupancy(x, (4, 3)))
    dropped, dropped_gpu = drop_columns(x, keep), drop_columns(gpu, keep.cuda())
    assert torch.equal(dropped_gpu.indices.cpu(), dropped.indices)
    assert torch.equal(dropped_gpu.features.cpu(), dropped.features)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"))])  # fmt: skip
@pytest.mark.parametrize("num_bins", [1, 4, 35200 * 3])
def test_count_is_an_exact_fixed_size_histogram_that_ignores_the_spare_value(num_bins, device):
    generator = torch.Generator().manual_seed(num_bins)
    bins = torch.randint(0, num_bins + 1, (50_000,), generator=generator)  # num_bins: the ignored spare value
    bins[:3] = torch.tensor([0, num_bins - 1, num_bins])  # both edges and the spare
    expected = torch.bincount(bins, minlength=num_bins + 1)[:num_bins]
    counts = _count(bins.to(device), num_bins).cpu()
    assert counts.dtype == torch.int64 and torch.equal(counts, expected)


def test_max_pool_rows_takes_each_cells_largest_row_and_ignores_padding():
    rows = torch.tensor([[1.0, -2.0], [3.0, -5.0], [-1.0, 4.0], [9.0, 9.0]], requires_grad=True)
    cells = torch.tensor([0, 0, 3, 4])  # B=1, 2 x 2 grid: the spare index 4 is a padding row
    pooled = max_pool_rows(rows, cells, 1, (2, 2))
    expected = torch.tensor([[[3.0, 0.0], [0.0, -1.0]], [[-2.0, 0.0], [0.0, 4.0]]])[None]
    assert torch.equal(pooled, expected) and pooled.is_contiguous(memory_format=torch.channels_last)
    pooled.sum().backward()  # the gradient reaches each cell's largest row only
    assert torch.equal(rows.grad, torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="max_pool_rows needs one cell per row"):
        max_pool_rows(rows, cells[:3], 1, (2, 2))


def _encoded_pool_reference(rows, weight, bias, cells, batch_size, grid):
    """Float64, cell by cell: the mean, then the maximum of ``ReLU(rows @ weight.T + bias)`` (zeros without rows)."""
    encoded = torch.relu(rows.double() @ weight.double().t() + bias.double())
    num_cells = batch_size * grid[0] * grid[1]
    reference = torch.zeros(num_cells, 2 * weight.shape[0], dtype=torch.float64)
    for cell in range(num_cells):
        mine = encoded[cells == cell]
        if len(mine):
            reference[cell] = torch.cat([mine.mean(dim=0), mine.max(dim=0).values])
    return reference.view(batch_size, *grid, -1).permute(0, 3, 1, 2)


def _encoder_inputs(num_rows: int, seed: int, out_channels: int = 32):
    """Rows, a [C_out, 4] weight and bias, and cells on a 2 x 5 x 7 grid: some cells empty, some rows padding."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randn(num_rows, 4, generator=generator)
    weight, bias = torch.randn(out_channels, 4, generator=generator), torch.randn(out_channels, generator=generator)
    cells = torch.randint(0, 60, (num_rows,), generator=generator)  # cells 60..69 stay empty
    cells[::17] = 70  # the spare index: padding rows
    return rows, weight, bias, cells


def test_encode_pool_rows_pools_the_encoded_rows_by_mean_and_max_and_is_differentiable():
    rows, weight, bias, cells = _encoder_inputs(500, seed=1, out_channels=6)
    rows, weight, bias = (t.double().requires_grad_() for t in (rows, weight, bias))
    pooled = encode_pool_rows(rows, weight, bias, cells, 2, (5, 7))
    reference = _encoded_pool_reference(rows.detach(), weight.detach(), bias.detach(), cells, 2, (5, 7))
    torch.testing.assert_close(pooled, reference, rtol=1e-12, atol=1e-12)
    assert pooled.is_contiguous(memory_format=torch.channels_last) and pooled[1, :, 4].eq(0).all()  # cells 63-69
    pooled.sum().backward()
    assert weight.grad.abs().sum() > 0 and rows.grad[cells == 70].eq(0).all()  # padding rows get no gradient
    with pytest.raises(ValueError, match="encode_pool_rows needs one cell per row"):
        encode_pool_rows(rows, weight, bias, cells[:3], 2, (5, 7))


@pytest.mark.parametrize("cell_order", ["random", "sorted"])
def test_the_fused_site_pool_kernel_equals_the_float64_reference(cell_order):
    from ada3d.models.adaptive.triton_site_pool import encode_pool

    device = "cuda" if torch.cuda.is_available() else "cpu"  # without a GPU through Triton's interpreter (conftest)

    rows, weight, bias, cells = _encoder_inputs(3000, seed=2)  # rows far more than a block, cells shared by many
    if cell_order == "sorted":  # runs of ~40 rows of one cell, across the kernel's blocks of 128: the segmented scan
        cells = cells.sort().values
    rows, weight, bias, cells = (t.to(device) for t in (rows, weight, bias, cells))
    pooled = encode_pool(rows, weight, bias, cells, _count(cells, 70))
    assert pooled.shape == (71, 64) and pooled.dtype == torch.float32
    reference = _encoded_pool_reference(rows.cpu(), weight.cpu(), bias.cpu(), cells.cpu(), 2, (5, 7))
    reference = reference.permute(0, 2, 3, 1).reshape(70, 64)
    torch.testing.assert_close(pooled[:70].cpu().double(), reference, rtol=1e-5, atol=1e-5)
    if device == "cuda":  # the dispatch: the kernel at inference, the torch ops where autograd needs them
        with torch.no_grad():
            fused = encode_pool_rows(rows, weight, bias, cells, 2, (5, 7))
        torch.testing.assert_close(fused.double().cpu(), reference.view(2, 5, 7, 64).permute(0, 3, 1, 2), rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
        assert fused.is_contiguous(memory_format=torch.channels_last)
        assert encode_pool_rows(rows, weight.requires_grad_(), bias, cells, 2, (5, 7)).requires_grad
