"""A real KITTI scan voxelised with the SECOND settings, through real sparse layers.

The reference is independent of sparse_ops: neighbours are looked up in a Python dict of sites.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ada3d.benchmark.sparse_encoder import build_encoder, voxelize_frame
from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConv3d, SubMConv3d
from tests.conftest import KITTI_DEMO_ROOT

FRAME = Path(KITTI_DEMO_ROOT) / "training" / "velodyne" / "000008.bin"
SPARSE_SHAPE = (41, 1600, 1408)


@pytest.fixture(scope="module")
def frame():
    features, coors, num_points = voxelize_frame(FRAME, torch.device("cpu"))
    return features.double(), coors, num_points


def _site_table(indices: np.ndarray) -> dict[tuple[int, ...], int]:
    return {tuple(row): i for i, row in enumerate(indices.tolist())}


def test_voxelisation_of_a_real_scan(frame):
    features, coors, num_points = frame
    assert num_points == 122555
    assert len(coors) == 35986  # voxels of 000008 in [0, 70.4] x [-40, 40] x [-3, 1] m at 0.05 x 0.05 x 0.1 m
    assert len({tuple(r) for r in coors.tolist()}) == len(coors)
    upper = torch.tensor([1, *SPARSE_SHAPE], dtype=torch.int32)
    assert ((coors >= 0) & (coors < upper)).all()
    # the mean point of each voxel lies in its voxel, up to float32 rounding at cell borders
    lower = torch.tensor([0.0, -40.0, -3.0], dtype=torch.float64)
    size = torch.tensor([0.05, 0.05, 0.1], dtype=torch.float64)
    mean_cell = torch.floor((features[:, :3] - lower) / size).int().flip(1)
    assert (mean_cell - coors[:, 1:]).abs().max() <= 1
    assert (mean_cell == coors[:, 1:]).all(dim=1).float().mean() > 0.98


def test_submanifold_conv_on_real_sites_matches_dict_reference(frame):
    features, coors, _ = frame
    torch.manual_seed(0)
    conv = SubMConv3d(4, 16, 3, bias=False).double()
    x = SparseTensor(features, coors, SPARSE_SHAPE, 1)
    ours = conv(x).features.detach().numpy()

    table = _site_table(coors.numpy())
    weight = conv.weight.detach().numpy()  # [16, 3, 3, 3, 4]
    feats = features.numpy()
    rng = np.random.default_rng(0)
    for row in rng.choice(len(coors), size=400, replace=False):
        b, z, y, x_ = coors[row].tolist()
        expected = np.zeros(16)
        for dz in range(3):
            for dy in range(3):
                for dx in range(3):
                    neighbour = table.get((b, z + dz - 1, y + dy - 1, x_ + dx - 1))
                    if neighbour is not None:
                        expected += weight[:, dz, dy, dx, :] @ feats[neighbour]
        np.testing.assert_allclose(ours[row], expected, rtol=1e-10, atol=1e-12)


def test_strided_conv_on_real_sites_matches_dict_reference(frame):
    features, coors, _ = frame
    torch.manual_seed(1)
    conv = SparseConv3d(4, 8, 3, stride=2, padding=1, bias=False).double()
    y = conv(SparseTensor(features, coors, SPARSE_SHAPE, 1))
    assert y.spatial_shape == (21, 800, 704)

    expected_sites: dict[tuple[int, ...], np.ndarray] = {}
    weight = conv.weight.detach().numpy()
    for (b, z, yy, x), feature in zip(coors.tolist(), features.numpy()):
        for kz in range(3):
            for ky in range(3):
                for kx in range(3):
                    out = [(c + 1 - k) for c, k in ((z, kz), (yy, ky), (x, kx))]
                    if any(o % 2 for o in out):
                        continue
                    key = (b, *(o // 2 for o in out))
                    if all(0 <= o < e for o, e in zip(key[1:], y.spatial_shape)):
                        expected_sites.setdefault(key, np.zeros(8))
                        expected_sites[key] += weight[:, kz, ky, kx, :] @ feature
    ours = _site_table(y.indices.numpy())
    assert set(ours) == set(expected_sites)
    values = y.features.detach().numpy()
    for key, expected in list(expected_sites.items())[::50]:
        np.testing.assert_allclose(values[ours[key]], expected, rtol=1e-10, atol=1e-12)


def test_second_encoder_runs_on_a_real_scan(frame):
    features, coors, _ = frame
    encoder = build_encoder(torch.device("cpu"), torch.float32).eval()
    with torch.no_grad():
        bev = encoder(features.float(), coors, 1)
    assert bev.shape == (1, 256, 200, 176) and torch.isfinite(bev).all()
    assert 0.05 < (bev.abs().sum(1) > 0).float().mean() < 0.9  # a sparse-but-populated BEV map
