"""Hard and dynamic voxelisation against per-point Python references; the dynamic mean VFE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ada3d.datasets.io import load_points
from ada3d.models.voxel_encoders import DynamicSimpleVFE, HardSimpleVFE
from ada3d.ops.voxelize import dynamic_voxelize, grid_shape, hard_voxelize
from tests.conftest import KITTI_DEMO_ROOT

VOXEL_SIZE = (0.5, 0.5, 1.0)
RANGE = (0.0, -2.0, -1.0, 4.0, 2.0, 1.0)
SECOND_GRID = dict(voxel_size=(0.05, 0.05, 0.1), point_cloud_range=(0, -40, -3, 70.4, 40, 1))


def reference_cell(point: np.ndarray) -> tuple[int, int, int] | None:
    """``(z, y, x)`` of a point, or None outside the range (one point at a time, in float64)."""
    cell = [math.floor((float(point[a]) - RANGE[a]) / VOXEL_SIZE[a]) for a in range(3)]
    extent = grid_shape(VOXEL_SIZE, RANGE)[::-1]
    if not all(0 <= c < e for c, e in zip(cell, extent)):
        return None
    return cell[2], cell[1], cell[0]


def reference_voxelize(points: np.ndarray, max_points: int, max_voxels: int):
    """Loop over points in order: voxels by first appearance, first ``max_points`` points each."""
    voxels: dict[tuple[int, int, int], list[np.ndarray]] = {}
    for point in points:
        key = reference_cell(point)
        if key is None:
            continue
        if key not in voxels:
            if len(voxels) == max_voxels:
                continue
            voxels[key] = []
        if len(voxels[key]) < max_points:
            voxels[key].append(point)
    return voxels


def _cloud(num_points: int, seed: int) -> np.ndarray:
    """Points in and around RANGE; half of them on voxel corners (so voxels overflow and borders are hit)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-1, -3, -2, 0], [5, 3, 2, 1], size=(num_points, 4)).astype(np.float32)
    points[: num_points // 2, :3] = np.round(points[: num_points // 2, :3])
    return points


@settings(max_examples=40, deadline=None)
@given(
    num_points=st.integers(0, 300),
    max_points=st.integers(1, 6),
    max_voxels=st.integers(1, 80),
    seed=st.integers(0, 2**16),
)
def test_hard_voxelize_matches_reference(num_points, max_points, max_voxels, seed):
    points = _cloud(num_points, seed)
    result = hard_voxelize(torch.from_numpy(points), VOXEL_SIZE, RANGE, max_points, max_voxels)
    expected = reference_voxelize(points, max_points, max_voxels)
    assert [tuple(c) for c in result.coords.tolist()] == list(expected)
    for m, kept in enumerate(expected.values()):
        assert result.num_points[m] == len(kept)
        np.testing.assert_array_equal(result.points[m, : len(kept)].numpy(), np.stack(kept))
        assert not result.points[m, len(kept) :].any()


@settings(max_examples=30, deadline=None)
@given(num_points=st.integers(0, 300), seed=st.integers(0, 2**16))
def test_dynamic_voxelize_matches_reference(num_points, seed):
    points = _cloud(num_points, seed)
    coords = dynamic_voxelize(torch.from_numpy(points), VOXEL_SIZE, RANGE)
    assert coords.dtype == torch.int32 and coords.shape == (num_points, 3)
    expected = [reference_cell(point) or (-1, -1, -1) for point in points]
    assert [tuple(c) for c in coords.tolist()] == expected


def test_non_finite_and_empty_clouds():
    points = torch.tensor([[1.0, 0, 0, 1], [float("nan"), 0, 0, 1], [1, float("inf"), 0, 1], [1, 0, 0.5, 1]])
    assert dynamic_voxelize(points, VOXEL_SIZE, RANGE).tolist() == [[1, 4, 2], [-1, -1, -1], [-1, -1, -1], [1, 4, 2]]
    voxels = hard_voxelize(points, VOXEL_SIZE, RANGE, 5, 10)
    assert voxels.coords.tolist() == [[1, 4, 2]] and voxels.num_points.tolist() == [2]
    empty = hard_voxelize(torch.zeros(0, 4), VOXEL_SIZE, RANGE, 5, 10)
    assert empty.points.shape == (0, 5, 4) and empty.coords.shape == (0, 3) and empty.num_points.shape == (0,)
    assert dynamic_voxelize(torch.zeros(0, 4), VOXEL_SIZE, RANGE).shape == (0, 3)


def test_dynamic_mean_vfe_matches_per_voxel_means():
    points = torch.from_numpy(_cloud(500, 3)).double()
    cells = dynamic_voxelize(points, VOXEL_SIZE, RANGE)
    coors = torch.cat([torch.tensor([0] * 250 + [1] * 250, dtype=torch.int32)[:, None], cells], 1)
    features, voxel_coors = DynamicSimpleVFE(num_features=4)(points, coors)
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    for point, coor in zip(points.numpy(), coors.tolist()):
        if coor[1] >= 0:
            groups.setdefault(tuple(coor), []).append(point)
    assert [tuple(c) for c in voxel_coors.tolist()] == sorted(groups)  # sorted by (batch, z, y, x)
    expected = np.stack([np.mean(groups[key], axis=0) for key in sorted(groups)])
    np.testing.assert_allclose(features.numpy(), expected, rtol=1e-12)
    assert voxel_coors.dtype == torch.int32 and DynamicSimpleVFE(3).out_channels == 3
    empty_features, empty_coors = DynamicSimpleVFE()(torch.zeros(0, 4), torch.zeros(0, 4, dtype=torch.int32))
    assert empty_features.shape == (0, 4) and empty_coors.shape == (0, 4)


def test_dynamic_and_hard_means_agree_when_no_voxel_overflows():
    points = torch.from_numpy(load_points(KITTI_DEMO_ROOT / "training" / "velodyne" / "000008.bin"))
    hard = hard_voxelize(points, **SECOND_GRID, max_points=100, max_voxels=10**6)
    hard_features = HardSimpleVFE()(hard.points, hard.num_points)
    cells = dynamic_voxelize(points, **SECOND_GRID)
    dynamic_features, dynamic_coors = DynamicSimpleVFE()(points, torch.cat([torch.zeros_like(cells[:, :1]), cells], 1))
    assert int(hard.num_points.max()) < 100 and len(dynamic_coors) == len(hard.coords) == 35986
    order = np.lexsort(hard.coords.numpy().T[::-1])
    np.testing.assert_array_equal(dynamic_coors[:, 1:].numpy(), hard.coords.numpy()[order])
    np.testing.assert_allclose(dynamic_features.numpy(), hard_features.numpy()[order], rtol=1e-5, atol=1e-6)


def test_grid_shape_of_the_second_kitti_grid():
    assert grid_shape((0.05, 0.05, 0.1), (0, -40, -3, 70.4, 40, 1)) == (40, 1600, 1408)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="x, y, z first"):
        hard_voxelize(torch.zeros(5, 2), VOXEL_SIZE, RANGE, 5, 10)
    with pytest.raises(ValueError, match="max_points"):
        hard_voxelize(torch.zeros(5, 4), VOXEL_SIZE, RANGE, 0, 10)
    with pytest.raises(ValueError, match="point_cloud_range 6"):
        dynamic_voxelize(torch.zeros(5, 4), VOXEL_SIZE, RANGE[:4])
    with pytest.raises(ValueError, match="must pair up"):
        DynamicSimpleVFE()(torch.zeros(5, 4), torch.zeros(4, 4, dtype=torch.int32))


@pytest.mark.gpu
def test_gpu_voxelisation_matches_cpu_on_a_real_scan():
    points = torch.from_numpy(load_points(KITTI_DEMO_ROOT / "training" / "velodyne" / "000008.bin"))
    cpu = hard_voxelize(points, **SECOND_GRID, max_points=5, max_voxels=40000)
    gpu = hard_voxelize(points.cuda(), **SECOND_GRID, max_points=5, max_voxels=40000)
    for ours, reference in zip(gpu, cpu):
        torch.testing.assert_close(ours.cpu(), reference, rtol=0, atol=0)
    cells = dynamic_voxelize(points.cuda(), **SECOND_GRID)
    torch.testing.assert_close(cells.cpu(), dynamic_voxelize(points, **SECOND_GRID), rtol=0, atol=0)
    coors = torch.cat([torch.zeros_like(cells[:, :1]), cells], 1)
    features, voxel_coors = DynamicSimpleVFE()(points.cuda(), coors)
    cpu_features, cpu_coors = DynamicSimpleVFE()(points, coors.cpu())
    torch.testing.assert_close(voxel_coors.cpu(), cpu_coors, rtol=0, atol=0)
    torch.testing.assert_close(features.cpu(), cpu_features, rtol=1e-5, atol=1e-5)
