"""SpatialFilter: exact per-sample top-k of the occupied cells, the density prior, the three strategies."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import ada3d.models.adaptive.spatial_filter  # noqa: F401  (registers SpatialFilter)
from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.spatial_filter import DensityPrior, SpatialFilter, keep_counts
from ada3d.registry import MODELS


def brute_force_keep(scores: torch.Tensor, occupied: torch.Tensor, keep_ratio: float) -> torch.Tensor:
    """Sort each sample's occupied cells by (score descending, row-major index) and keep the first k."""
    keep = torch.zeros_like(occupied)
    for b in range(occupied.shape[0]):
        flat_scores, flat_occupied = scores[b].reshape(-1).tolist(), occupied[b].reshape(-1).tolist()
        cells = sorted((-flat_scores[i], i) for i in range(len(flat_scores)) if flat_occupied[i])
        count = 0 if not cells else max(1, int(np.floor(keep_ratio * len(cells) + 0.5)))
        for _, i in cells[:count]:
            keep[b].view(-1)[i] = True
    return keep


def random_maps(seed: int, batch: int = 5, height: int = 13, width: int = 11, levels: int = 7):
    """Scores on a few levels (many ties) and occupancy of varied density; sample 0 empty, sample 1 full."""
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (batch, height, width), generator=generator).float() / levels
    density = torch.linspace(0.0, 1.0, batch)[:, None, None]
    occupied = torch.rand(batch, height, width, generator=generator) < density
    occupied[1] = True
    return scores, occupied


@pytest.mark.parametrize("keep_ratio", [0.0, 0.05, 0.25, 0.5, 0.7, 0.999, 1.0])
@pytest.mark.parametrize("seed", [0, 1])
def test_select_is_the_exact_top_k_of_a_brute_force_sort(keep_ratio, seed):
    scores, occupied = random_maps(seed)
    keep = SpatialFilter.select(scores, occupied, keep_ratio)
    assert keep.dtype == torch.bool and keep.shape == occupied.shape
    assert torch.equal(keep, brute_force_keep(scores, occupied, keep_ratio))


def test_keep_counts_round_halves_up_and_never_drop_a_whole_sample():
    occupied_counts = torch.tensor([0, 5, 3, 10, 4, 7, 1])
    assert keep_counts(occupied_counts, 0.5).tolist() == [0, 3, 2, 5, 2, 4, 1]
    assert keep_counts(occupied_counts, 0.1).tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert keep_counts(occupied_counts, 0.25).tolist() == [0, 1, 1, 3, 1, 2, 1]
    assert keep_counts(occupied_counts, 0.0).tolist() == [0, 1, 1, 1, 1, 1, 1]
    assert keep_counts(occupied_counts, 1.0).tolist() == occupied_counts.tolist()
    scores, occupied = random_maps(3)
    kept = SpatialFilter.select(scores, occupied, 0.3).sum(dim=(1, 2))
    assert torch.equal(kept, keep_counts(occupied.sum(dim=(1, 2)), 0.3))


def test_a_sample_without_occupied_cells_keeps_nothing_and_full_ratio_keeps_every_occupied_cell():
    scores, occupied = random_maps(4)
    assert not SpatialFilter.select(scores, occupied, 0.5)[0].any()
    assert torch.equal(SpatialFilter.select(scores, occupied, 1.0), occupied)


def test_unoccupied_cells_are_never_kept_whatever_their_scores():
    scores, occupied = random_maps(5)
    scores = torch.where(occupied, scores, torch.full_like(scores, 1e9))
    scores[2, 0, 0] = float("nan")
    scores[3, 0, 1] = float("-inf")
    for keep_ratio in (0.1, 0.6, 1.0):
        keep = SpatialFilter.select(scores, occupied, keep_ratio)
        assert not (keep & ~occupied).any()
        assert torch.equal(keep.sum(dim=(1, 2)), keep_counts(occupied.sum(dim=(1, 2)), keep_ratio))


def reference_density_scores(importance: np.ndarray, occupied: np.ndarray, kernel: int, alpha: float, eps: float):
    """Window sums cell by cell: rows i - (k - 1) // 2 .. i + k // 2, cells beyond the border unoccupied."""
    batch, height, width = occupied.shape
    local = np.zeros(occupied.shape)
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                rows = slice(max(0, i - (kernel - 1) // 2), min(height, i + kernel // 2 + 1))
                cols = slice(max(0, j - (kernel - 1) // 2), min(width, j + kernel // 2 + 1))
                local[b, i, j] = occupied[b, rows, cols].sum() / kernel**2
    return importance / (local + eps) ** alpha


@pytest.mark.parametrize(("kernel", "alpha", "eps"), [(16, 0.2, 1e-4), (5, 0.5, 1e-3), (4, 1.0, 1e-2), (1, 0.3, 0.1)])
def test_density_prior_scores_are_exactly_the_formula(kernel, alpha, eps):
    scores, occupied = random_maps(6, height=20, width=18)
    importance = torch.rand(scores.shape, generator=torch.Generator().manual_seed(8))
    spatial_filter = SpatialFilter(density_prior=dict(kernel=kernel, alpha=alpha, eps=eps))
    result = spatial_filter.scores(importance[:, None], occupied, "predictor")
    expected = reference_density_scores(importance.double().numpy(), occupied.numpy(), kernel, alpha, eps)
    np.testing.assert_allclose(result.numpy(), expected, rtol=1e-5)


def test_density_prior_moves_the_selection_toward_sparse_regions():
    occupied = torch.zeros(1, 32, 32, dtype=torch.bool)
    occupied[0, :12, :12] = True  # a dense patch of 144 cells
    occupied[0, 20::4, 20::4] = True  # 9 isolated cells
    sparse = torch.zeros_like(occupied)
    sparse[0, 20::4, 20::4] = True
    importance = torch.full((1, 1, 32, 32), 0.5)
    importance[0, 0, :12, :12] = 0.55  # the dense patch looks slightly more important
    plain = SpatialFilter()
    prior = SpatialFilter(density_prior=dict(kernel=8, alpha=0.2, eps=1e-4))
    keep_ratio = 9 / 153
    kept_plain = plain.select(plain.scores(importance, occupied), occupied, keep_ratio)
    kept_prior = prior.select(prior.scores(importance, occupied), occupied, keep_ratio)
    assert int((kept_plain & sparse).sum()) == 0
    assert torch.equal(kept_prior, sparse)


def test_predictor_scores_without_a_prior_are_the_importance_detached():
    importance = torch.rand(2, 1, 6, 5, requires_grad=True)
    scores = SpatialFilter().scores(importance, torch.ones(2, 6, 5, dtype=torch.bool), "predictor")
    assert torch.equal(scores, importance[:, 0].detach()) and not scores.requires_grad


def test_random_strategy_is_reproducible_from_its_seed():
    occupied = torch.ones(2, 9, 7, dtype=torch.bool)
    first, second, other = SpatialFilter(seed=7), SpatialFilter(seed=7), SpatialFilter(seed=8)
    draws = [first.scores(None, occupied, "random") for _ in range(3)]
    assert all(torch.equal(d, second.scores(None, occupied, "random")) for d in draws)
    assert not torch.equal(draws[0], draws[1])
    assert not torch.equal(draws[0], other.scores(None, occupied, "random"))
    assert torch.equal(copy.deepcopy(first).scores(None, occupied, "random"), first.scores(None, occupied, "random"))
    keep = first.select(first.scores(None, occupied, "random"), occupied, 0.2)
    assert int(keep.sum()) == 2 * 13


def test_distance_strategy_keeps_the_nearest_cells():
    grid = BevGrid(x_min=0.0, y_min=-8.0, cell_x=0.5, cell_y=0.5, height=32, width=40)
    occupied = torch.rand(2, 32, 40, generator=torch.Generator().manual_seed(9)) < 0.4
    spatial_filter = SpatialFilter()
    keep = spatial_filter.select(spatial_filter.scores(None, occupied, "distance", grid), occupied, 0.2)
    distance = grid.cell_centres().norm(dim=-1)
    for b in range(2):
        assert distance[keep[b]].max() <= distance[occupied[b] & ~keep[b]].min()
    assert torch.equal(keep.sum(dim=(1, 2)), keep_counts(occupied.sum(dim=(1, 2)), 0.2))


def test_built_from_the_registry_without_touching_the_config():
    config = dict(type="SpatialFilter", density_prior=dict(kernel=8), seed=3)
    snapshot = copy.deepcopy(config)
    spatial_filter = MODELS.build(config)
    assert config == snapshot
    assert spatial_filter.density_prior == DensityPrior(kernel=8, alpha=0.2, eps=1e-4)
    assert SpatialFilter().density_prior is None


def test_bad_arguments_fail_loudly():
    occupied = torch.ones(1, 4, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"unknown spatial-filter strategy 'nearest'.*'predictor', 'random', 'dist"):
        SpatialFilter().scores(None, occupied, "nearest")
    with pytest.raises(ValueError, match="needs the predictor's importance"):
        SpatialFilter().scores(None, occupied, "predictor")
    with pytest.raises(ValueError, match="needs the BevGrid"):
        SpatialFilter().scores(None, occupied, "distance")
    with pytest.raises(ValueError, match="does not match occupied"):
        SpatialFilter().scores(torch.rand(1, 1, 4, 5), occupied, "predictor")
    with pytest.raises(ValueError, match=r"unknown keys \['radius'\]"):
        SpatialFilter(density_prior=dict(radius=3))
    with pytest.raises(ValueError, match="kernel must be a positive int"):
        SpatialFilter(density_prior=dict(kernel=0))
    with pytest.raises(ValueError, match=r"keep_ratio must lie in \[0, 1\]"):
        SpatialFilter.select(torch.rand(1, 4, 4), occupied, 1.5)


@pytest.mark.gpu
def test_cuda_selection_matches_cpu_ties_included():
    scores, occupied = random_maps(10, batch=4, height=200, width=176, levels=3)
    for keep_ratio in (0.1, 0.5):
        expected = SpatialFilter.select(scores, occupied, keep_ratio)
        assert torch.equal(SpatialFilter.select(scores.cuda(), occupied.cuda(), keep_ratio).cpu(), expected)
    prior = SpatialFilter(density_prior=dict())
    torch.testing.assert_close(
        prior.scores(scores.cuda(), occupied.cuda()).cpu(), prior.scores(scores, occupied), rtol=1e-5, atol=1e-6
    )
