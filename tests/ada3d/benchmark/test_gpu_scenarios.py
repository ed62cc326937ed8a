"""The benchmark's encoders on CUDA, on real scans: eager, CUDA-graph and spconv outputs against a CPU
float64 reference. Skipped without a CUDA device."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ada3d.benchmark.engines import build_engines, set_tf32
from ada3d.benchmark.inputs import voxelize_batch
from ada3d.benchmark.scenarios import DataOptions, build_scenario
from tests.conftest import KITTI_DEMO_ROOT
from tests.sparse_ops.reference import relative_error

pytestmark = pytest.mark.gpu

DATA = DataOptions(KITTI_DEMO_ROOT, ("000008",), Path(KITTI_DEMO_ROOT).parent / "nuscenes", sweeps=3)


def _spconv_available() -> bool:
    try:
        import spconv.pytorch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("scenario_name", ["second-kitti", "centerpoint-nus", "centerpoint-nus-multisweep"])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float16, 1e-2)])
def test_every_engine_agrees_with_cpu_float64(scenario_name, dtype, tolerance):
    set_tf32(False)
    scenario = build_scenario(scenario_name, DATA)
    name, clouds = scenario.batches(2)[0]
    batch = voxelize_batch(name, clouds, scenario.voxelization, torch.device("cpu"))
    reference = scenario.build_encoder(torch.device("cpu"), torch.float64).eval()
    with torch.no_grad():
        expected = reference(batch.features.double(), batch.coors, batch.batch_size)
    cuda = voxelize_batch(name, clouds, scenario.voxelization, torch.device("cuda"))
    encoder = scenario.build_encoder(torch.device("cuda"), dtype)
    engines = build_engines(encoder, cuda_graphs=True, compare_spconv=_spconv_available())
    for engine in engines:
        out = engine.inference(cuda, dtype)()
        assert torch.isfinite(out).all(), engine.name
        error = relative_error(out, expected)
        assert error < tolerance, f"{engine.name}: relative error {error:.1e}"
