"""Det3DDataPreprocessor: batching with voxelisation, empty samples included."""

from __future__ import annotations

import pytest
import torch
from mmengine.dataset import pseudo_collate

from ada3d.datasets.io import load_points
from ada3d.datasets.transforms import Pack3DDetInputs
from ada3d.models.data_preprocessors import Det3DDataPreprocessor
from ada3d.ops.voxelize import dynamic_voxelize, hard_voxelize
from ada3d.registry import MODELS
from ada3d.structures import Det3DDataSample
from tests.conftest import KITTI_DEMO_ROOT

RANGE = [0, -40, -3, 70.4, 40, 1]
VOXEL_SIZE = [0.05, 0.05, 0.1]
HARD_LAYER = dict(max_num_points=5, point_cloud_range=RANGE, voxel_size=VOXEL_SIZE, max_voxels=(16000, 40000))


@pytest.fixture(scope="module")
def batch():
    """A real scan and an empty cloud, packed and collated as mmengine's DataLoader does."""
    scan = load_points(KITTI_DEMO_ROOT / "training" / "velodyne" / "000008.bin")
    pack = Pack3DDetInputs(keys=["points"])
    samples = [pack(dict(points=scan, sample_idx=0)), pack(dict(points=scan[:0], sample_idx=1))]
    return pseudo_collate(samples)


def test_hard_voxels_of_a_batch_with_an_empty_sample(batch):
    preprocessor = MODELS.build(dict(type="Det3DDataPreprocessor", voxel=True, voxel_type="hard",
                                     voxel_layer=HARD_LAYER))
    scan = batch["inputs"]["points"][0]
    for training, max_voxels in ((True, 16000), (False, 40000)):
        out = preprocessor(batch, training=training)
        voxels = out["inputs"]["voxels"]
        expected = hard_voxelize(scan, VOXEL_SIZE, RANGE, 5, max_voxels)
        assert voxels["batch_size"] == 2 and len(out["inputs"]["points"]) == 2
        torch.testing.assert_close(voxels["voxels"], expected.points)
        torch.testing.assert_close(voxels["num_points"], expected.num_points)
        assert voxels["coors"].dtype == torch.int32 and voxels["coors"].shape == (len(expected.coords), 4)
        assert (voxels["coors"][:, 0] == 0).all()  # nothing from the empty sample
        torch.testing.assert_close(voxels["coors"][:, 1:], expected.coords)
        assert len(expected.coords) == min(max_voxels, 35986)
        assert [type(sample) for sample in out["data_samples"]] == [Det3DDataSample] * 2


def test_dynamic_voxels_of_a_batch_with_an_empty_sample(batch):
    preprocessor = Det3DDataPreprocessor(voxel=True, voxel_type="dynamic",
                                         voxel_layer=dict(point_cloud_range=RANGE, voxel_size=VOXEL_SIZE))
    # the empty sample first: the batch index of the scan's points must still be 1
    swapped = dict(inputs=dict(points=batch["inputs"]["points"][::-1]), data_samples=batch["data_samples"][::-1])
    voxels = preprocessor(swapped)["inputs"]["voxels"]
    scan = batch["inputs"]["points"][0]
    assert voxels["batch_size"] == 2
    torch.testing.assert_close(voxels["points"], scan)
    assert voxels["coors"].dtype == torch.int32 and (voxels["coors"][:, 0] == 1).all()
    torch.testing.assert_close(voxels["coors"][:, 1:], dynamic_voxelize(scan, VOXEL_SIZE, RANGE))
    assert (voxels["coors"][:, 1] == -1).sum() > 0  # points behind the car lie outside the range


def test_all_empty_batch_and_uncollated_input():
    empty = [Pack3DDetInputs(keys=["points"])(dict(points=torch.zeros(0, 4).numpy())) for _ in range(3)]
    out = Det3DDataPreprocessor(voxel=True, voxel_layer=HARD_LAYER)(empty)
    voxels = out["inputs"]["voxels"]
    assert voxels["batch_size"] == 3 and voxels["voxels"].shape == (0, 5, 4) and voxels["coors"].shape == (0, 4)
    plain = Det3DDataPreprocessor()(empty)
    assert "voxels" not in plain["inputs"] and len(plain["inputs"]["points"]) == 3


def test_configuration_errors():
    with pytest.raises(ValueError, match="voxel_type"):
        Det3DDataPreprocessor(voxel=True, voxel_type="pillar", voxel_layer=HARD_LAYER)
    with pytest.raises(ValueError, match="needs a voxel_layer"):
        Det3DDataPreprocessor(voxel=True)
    with pytest.raises(ValueError, match=r"unknown keys \['deterministic'\]"):
        Det3DDataPreprocessor(voxel=True, voxel_layer=dict(HARD_LAYER, deterministic=False))
    with pytest.raises(ValueError, match="dynamic voxelisation keeps every point"):
        Det3DDataPreprocessor(voxel=True, voxel_type="dynamic", voxel_layer=HARD_LAYER)
    with pytest.raises(ValueError, match="max_num_points >= 1"):
        Det3DDataPreprocessor(voxel=True, voxel_layer=dict(HARD_LAYER, max_num_points=-1))
    preprocessor = Det3DDataPreprocessor(voxel=True, voxel_layer=HARD_LAYER)
    with pytest.raises(ValueError, match=r"one C for the batch, got shapes \[\(3, 4\), \(2, 5\)\]"):
        preprocessor(dict(inputs=dict(points=[torch.zeros(3, 4), torch.zeros(2, 5)])))


@pytest.mark.gpu
def test_batch_moves_to_the_model_device(batch):
    preprocessor = Det3DDataPreprocessor(voxel=True, voxel_layer=HARD_LAYER).cuda()
    out = preprocessor(batch)
    assert all(points.is_cuda for points in out["inputs"]["points"])
    assert all(value.is_cuda for key, value in out["inputs"]["voxels"].items() if key != "batch_size")
    cpu = Det3DDataPreprocessor(voxel=True, voxel_layer=HARD_LAYER)(batch)
    torch.testing.assert_close(out["inputs"]["voxels"]["coors"].cpu(), cpu["inputs"]["voxels"]["coors"])
