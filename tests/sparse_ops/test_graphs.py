"""CUDA-graph inference (sparse_ops.graphs): the same output as eager execution, graphs reused per size
bucket, recaptured when a frame overflows a learned capacity. Skipped without a CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sparse_ops.graphs import CudaGraphRunner
from tests.conftest import KITTI_DEMO_ROOT

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def frames():
    from ada3d.benchmark.sparse_encoder import voxelize_frame

    device = torch.device("cuda")
    return [voxelize_frame(Path(KITTI_DEMO_ROOT) / "training" / "velodyne" / f"{name}.bin", device)[:2]
            for name in ("000001", "000008", "000076")]  # fmt: skip


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_graphed_encoder_matches_eager_on_real_scans(frames, dtype):
    from ada3d.benchmark.sparse_encoder import build_encoder

    encoder = build_encoder(torch.device("cuda"), dtype).eval()
    runner = CudaGraphRunner(encoder.forward, encoder.sparse_shape)
    with torch.no_grad():
        for features, coors in frames + frames:  # the second round replays the captured graphs
            eager = encoder(features.to(dtype), coors, 1)
            graphed = runner(features.to(dtype), coors, 1)
            assert torch.equal(graphed, eager)  # same kernels, same order: bit-identical
    assert runner.num_captures <= 2 * len(frames)  # at most one recapture per frame, none in the second round
    captures = runner.num_captures
    with torch.no_grad():
        runner(frames[0][0].to(dtype), frames[0][1], 1)
    assert runner.num_captures == captures


def test_outputs_without_copy_are_the_graph_buffers_and_use_less_memory(frames):
    from ada3d.benchmark.sparse_encoder import build_encoder

    encoder = build_encoder(torch.device("cuda"), torch.float16).eval()
    features, coors = frames[0]
    features = features.half()
    peaks = {}
    with torch.no_grad():
        eager = encoder(features, coors, 1)
        for copy in (True, False):
            runner = CudaGraphRunner(encoder.forward, encoder.sparse_shape, copy_outputs=copy)
            first = runner(features, coors, 1)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            second = runner(features, coors, 1)
            torch.cuda.synchronize()
            peaks[copy] = torch.cuda.max_memory_allocated() - before
            assert torch.equal(second, eager)
            assert (second.data_ptr() == first.data_ptr()) is not copy  # no copy: the same static buffer
            del runner, first, second
    output_bytes = eager.numel() * eager.element_size()  # 17 MB: SECOND's BEV map in fp16
    assert peaks[True] >= output_bytes and peaks[False] < output_bytes / 16, peaks  # the replay itself: input checks


def test_overflowing_capacity_is_recaptured_and_exact(frames):
    from ada3d.benchmark.sparse_encoder import build_encoder

    encoder = build_encoder(torch.device("cuda"), torch.float32).eval()
    runner = CudaGraphRunner(encoder.forward, encoder.sparse_shape, margin=1.0)
    features, coors = frames[1]
    count = 8192  # both inputs fall into one bucket
    near = torch.argsort(coors[:, 3])[:count]  # the dense voxels next to the sensor: few strided outputs
    spread = torch.randperm(len(coors), generator=torch.Generator().manual_seed(0))[:count].cuda()  # many
    with torch.no_grad():
        for rows in (near, spread):
            graphed = runner(features[rows], coors[rows], 1)
            assert torch.equal(graphed, encoder(features[rows], coors[rows], 1))
            if rows is near:
                captures = runner.num_captures
    assert len(runner.captures) == 1 and runner.num_captures > captures  # the spread input overflowed


def test_runner_refuses_training_and_cpu_tensors(frames):
    runner = CudaGraphRunner(lambda f, i, b: f, (41, 1600, 1408))
    features, coors = frames[0]
    with pytest.raises(RuntimeError, match="inference"):
        runner(features, coors, 1)
    with torch.no_grad(), pytest.raises(ValueError, match="CUDA tensors"):
        runner(features.cpu(), coors.cpu(), 1)
