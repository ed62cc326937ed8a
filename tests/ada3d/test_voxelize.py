"""Hard voxelisation against a per-point Python reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ada3d.ops.voxelize import grid_shape, hard_voxelize

VOXEL_SIZE = (0.5, 0.5, 1.0)
RANGE = (0.0, -2.0, -1.0, 4.0, 2.0, 1.0)


def reference_voxelize(points: np.ndarray, max_points: int, max_voxels: int):
    """Loop over points in order: voxels by first appearance, first ``max_points`` points each."""
    voxels: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for point in points:
        cell = [math.floor((point[a] - RANGE[a]) / VOXEL_SIZE[a]) for a in range(3)]
        extent = grid_shape(VOXEL_SIZE, RANGE)[::-1]
        if not all(0 <= c < e for c, e in zip(cell, extent)):
            continue
        key = (cell[2], cell[1], cell[0])
        if key not in voxels:
            if len(voxels) == max_voxels:
                continue
            voxels[key] = []
        if len(voxels[key]) < max_points:
            voxels[key].append(point)
    return voxels


@settings(max_examples=40, deadline=None)
@given(
    num_points=st.integers(0, 300),
    max_points=st.integers(1, 6),
    max_voxels=st.integers(1, 80),
    seed=st.integers(0, 2**16),
)
def test_hard_voxelize_matches_reference(num_points, max_points, max_voxels, seed):
    rng = np.random.default_rng(seed)
    # a few clusters so voxels overflow, plus points outside the range
    points = rng.uniform([-1, -3, -2, 0], [5, 3, 2, 1], size=(num_points, 4)).astype(np.float32)
    points[: num_points // 2, :3] = np.round(points[: num_points // 2, :3])
    result = hard_voxelize(torch.from_numpy(points), VOXEL_SIZE, RANGE, max_points, max_voxels)
    expected = reference_voxelize(points, max_points, max_voxels)
    assert [tuple(c) for c in result.coords.tolist()] == list(expected)
    for m, kept in enumerate(expected.values()):
        assert result.num_points[m] == len(kept)
        np.testing.assert_array_equal(result.points[m, : len(kept)].numpy(), np.stack(kept))
        assert not result.points[m, len(kept) :].any()


def test_grid_shape_of_the_second_kitti_grid():
    assert grid_shape((0.05, 0.05, 0.1), (0, -40, -3, 70.4, 40, 1)) == (40, 1600, 1408)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="x, y, z first"):
        hard_voxelize(torch.zeros(5, 2), VOXEL_SIZE, RANGE, 5, 10)
    with pytest.raises(ValueError, match="max_points"):
        hard_voxelize(torch.zeros(5, 4), VOXEL_SIZE, RANGE, 0, 10)
