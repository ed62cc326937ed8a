"""Benchmark inputs: the real nuScenes keyframe, the multi-sweep-like cloud, poses, batches, scenarios."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from ada3d.benchmark import centerpoint_nus
from ada3d.benchmark.centerpoint_nus import NUSCENES_VOXELIZATION, augmented_batch, load_keyframe, merge_sweeps
from ada3d.benchmark.inputs import PointCloud, cyclic_batches, voxelize_batch
from ada3d.benchmark.scenarios import SCENARIOS, DataOptions, build_scenario
from ada3d.benchmark.sparse_encoder import KITTI_VOXELIZATION, build_inputs
from tests.conftest import KITTI_DEMO_ROOT

NUSCENES_DEMO_ROOT = Path(KITTI_DEMO_ROOT).parent / "nuscenes"


@pytest.fixture(scope="module")
def keyframe() -> PointCloud:
    (path,) = centerpoint_nus.nuscenes_keyframes(NUSCENES_DEMO_ROOT)
    return load_keyframe(path)


def test_grids_of_the_two_voxelisations():
    assert KITTI_VOXELIZATION.sparse_shape == (41, 1600, 1408)
    assert NUSCENES_VOXELIZATION.sparse_shape == (41, 1440, 1440)


def test_real_keyframe_loads_with_time_lag_and_voxelises(keyframe):
    assert keyframe.name == "1532402927647951"
    assert keyframe.points.shape == (34688, 5)
    assert (keyframe.points[:, 4] == 0).all()  # the ring column is replaced by the time lag
    assert keyframe.points[:, 3].max() > 1  # intensity kept (0..255)
    features, coors = NUSCENES_VOXELIZATION(keyframe.points)
    assert features.shape == (17509, 5) and coors.shape == (17509, 4)
    upper = torch.tensor([1, *NUSCENES_VOXELIZATION.sparse_shape], dtype=torch.int32)
    assert ((coors >= 0) & (coors < upper)).all()


def test_multisweep_cloud_is_ego_motion_shifted_copies_with_100k_voxels(keyframe):
    merged = merge_sweeps(keyframe, 10)
    assert merged.name == "1532402927647951 + 9 sweeps"
    n = len(keyframe.points)
    assert merged.points.shape == (10 * n, 5)
    lags = merged.points[:, 4].reshape(10, n)
    torch.testing.assert_close(lags, (torch.arange(10) * 0.05).unsqueeze(1).expand(10, n))
    # undo sweep 3's ego motion (0.5 m and 0.2 degrees per sweep): the keyframe again
    sweep = merged.points[3 * n : 4 * n].clone()
    sweep[:, 0] += 1.5
    angle = math.radians(0.6)
    x, y = sweep[:, 0].clone(), sweep[:, 1].clone()
    sweep[:, 0], sweep[:, 1] = math.cos(angle) * x - math.sin(angle) * y, math.sin(angle) * x + math.cos(angle) * y
    torch.testing.assert_close(sweep[:, :4], keyframe.points[:, :4], atol=1e-4, rtol=0)
    _, coors = NUSCENES_VOXELIZATION(merged.points)
    assert len(coors) == 147676  # > 100k, and below the 160000 cap, so nothing was dropped
    with pytest.raises(ValueError, match="num_sweeps"):
        merge_sweeps(keyframe, 0)


def test_batch_of_poses_has_distinct_samples(keyframe):
    name, clouds = augmented_batch(keyframe, 8)
    assert name == "1532402927647951, 8 poses" and clouds[0] is keyframe
    radius = keyframe.points[:, :2].norm(dim=1)
    for cloud in clouds[1:]:
        torch.testing.assert_close(cloud.points[:, :2].norm(dim=1), radius)  # rigid in x, y
        assert torch.equal(cloud.points[:, 2:], keyframe.points[:, 2:])
        assert not torch.allclose(cloud.points[:, :2], keyframe.points[:, :2])
    batch = voxelize_batch(name, clouds, NUSCENES_VOXELIZATION, torch.device("cpu"))
    assert batch.batch_size == 8 and batch.num_points == 8 * 34688
    per_sample = torch.bincount(batch.coors[:, 0], minlength=8)
    assert (per_sample > 17000).all() and len(batch.coors) == per_sample.sum()
    sample_sites = [{tuple(r) for r in batch.coors[batch.coors[:, 0] == b, 1:].tolist()} for b in (0, 1)]
    assert len(sample_sites[0] & sample_sites[1]) < 0.5 * len(sample_sites[0])


def test_cyclic_batches_fill_every_batch():
    clouds = [PointCloud(str(i), torch.zeros(1, 4)) for i in range(9)]
    assert [name for name, _ in cyclic_batches(clouds[:3], 8)] == ["0+1+2+0+1+2+0+1"]
    batches = cyclic_batches(clouds, 8)
    assert [name for name, _ in batches] == ["0+1+2+3+4+5+6+7", "8+0+1+2+3+4+5+6"]
    assert [name for name, _ in cyclic_batches(clouds[:2], 1)] == ["0", "1"]
    with pytest.raises(ValueError, match="no point clouds"):
        cyclic_batches([], 1)


def test_voxelisation_needs_enough_point_columns():
    with pytest.raises(ValueError, match="need 5"):
        NUSCENES_VOXELIZATION(torch.zeros(10, 4))


def test_scenarios_build_their_batches_from_the_demo_data():
    data = DataOptions(KITTI_DEMO_ROOT, ("000001", "000076"), NUSCENES_DEMO_ROOT, sweeps=2)
    kitti = build_scenario("second-kitti", data)
    assert [name for name, _ in kitti.batches(1)] == ["000001", "000076"]
    assert [len(clouds) for _, clouds in kitti.batches(8)] == [8]
    multisweep = build_scenario("centerpoint-nus-multisweep", data)
    ((name, clouds),) = multisweep.batches(1)
    assert name == "1532402927647951 + 1 sweeps" and len(clouds[0].points) == 2 * 34688
    assert "copies k = 1..1 of itself" in multisweep.notes and "0.5k m" in multisweep.notes
    assert set(SCENARIOS) == {"second-kitti", "centerpoint-nus", "centerpoint-nus-multisweep"}
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("pointpillars")
    with pytest.raises(FileNotFoundError, match="000999"):
        build_scenario("second-kitti", DataOptions(KITTI_DEMO_ROOT, ("000999",))).batches(1)


def test_kitti_inputs_in_batches():
    path = Path(KITTI_DEMO_ROOT) / "training" / "velodyne" / "000076.bin"
    (batch,) = build_inputs([path], torch.device("cpu"), batch_size=2)
    assert batch.name == "000076+000076" and batch.batch_size == 2 and batch.num_points == 2 * 114380
    assert torch.bincount(batch.coors[:, 0]).tolist() == [35530, 35530]
    assert batch.features.shape == (2 * 35530, 4)
