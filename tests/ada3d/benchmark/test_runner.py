"""run_scenario on a tiny scenario: every engine timed, outputs compared, weights left as they were."""

from __future__ import annotations

import copy

import pytest
import torch

from ada3d.benchmark.centerpoint_nus import augmented_batch
from ada3d.benchmark.engines import Engine, build_engines, restored_state
from ada3d.benchmark.inputs import PointCloud, Voxelization
from ada3d.benchmark.runner import run_scenario
from ada3d.benchmark.scenarios import Scenario
from ada3d.benchmark.weights import seeded_encoder
from ada3d.models.middle_encoders import VoxelResBackBone8x

TINY = Voxelization((0.5, 0.5, 0.2), (-8.0, -8.0, -4.0, 8.0, 8.0, 4.0), 4, 2000, 5)  # grid (41, 32, 32)


def _tiny_scenario() -> Scenario:
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(3000, 5, generator=generator) * torch.tensor([16.0, 16.0, 8.0, 1.0, 0.0]) - torch.tensor(
        [8.0, 8.0, 4.0, 0.0, 0.0]
    )
    cloud = PointCloud("tiny", points)
    return Scenario(
        name="tiny",
        title="tiny",
        notes="uniform random points",
        voxelization=TINY,
        build_encoder=lambda device, dtype: seeded_encoder(
            lambda: VoxelResBackBone8x(5, TINY.sparse_shape, channels=(4, 8, 8, 8), output_channels=8), device, dtype
        ),
        batches=lambda batch_size: [augmented_batch(cloud, batch_size)],
    )


def test_run_times_every_engine_and_compares_with_the_reference():
    scenario = _tiny_scenario()
    encoder = scenario.build_encoder(torch.device("cpu"), torch.float32)
    before = copy.deepcopy(encoder.state_dict())
    twin = Engine("spconv", copy.deepcopy(encoder))  # stands in for spconv: the same network, run alone
    run = run_scenario(scenario, [Engine("ours", encoder), twin], torch.device("cpu"), "fp32", 2, warmup=0, repeats=1)
    (batch,) = run.batches
    assert batch.name == "tiny, 2 poses" and batch.num_points == 6000 and run.reference == "spconv"
    ours = batch.engines["ours"]
    assert ours.inference.median_ms > 0 and ours.training.median_ms > 0 and ours.inference.peak_memory_mb is None
    assert ours.max_relative_difference == 0.0 and batch.engines["spconv"].max_relative_difference is None
    assert run.disagreements() == []
    for name, value in encoder.state_dict().items():  # training runs updated BN statistics, then restored them
        assert torch.equal(value, before[name]), name
    assert all(p.grad is None for p in encoder.parameters())


def test_restored_state_undoes_batch_norm_updates():
    scenario = _tiny_scenario()
    encoder = scenario.build_encoder(torch.device("cpu"), torch.float32)
    bn = encoder.conv1[0].bn1
    mean = bn.running_mean.clone()
    with restored_state(encoder):
        bn.running_mean.add_(1.0)
    assert torch.equal(bn.running_mean, mean)


def test_cuda_graphs_need_a_cuda_encoder():
    encoder = _tiny_scenario().build_encoder(torch.device("cpu"), torch.float32)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        build_engines(encoder, cuda_graphs=True)
