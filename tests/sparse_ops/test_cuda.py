"""The same sparse ops on CUDA: identical sites, values and gradients as on CPU (float64), and
low-precision runs within tolerance. Skipped without a CUDA device."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

from sparse_ops.nn import SparseMaxPool2d, SparseMaxPool3d
from tests.sparse_ops.cases import case_conv, case_tensor, conv_cases

pytestmark = pytest.mark.gpu


def _run(module, x, device, dtype=torch.float64):
    module = module.to(device, dtype)
    features = x.features.detach().to(device, dtype).clone().requires_grad_(True)
    indices = x.indices.to(device)
    y = module(type(x)(features, indices, x.spatial_shape, x.batch_size))
    grad_out = torch.linspace(-1, 1, y.features.numel(), dtype=torch.float64).view_as(y.features)
    (y.features * grad_out.to(device, dtype)).sum().backward()
    weight_grad = module.weight.grad.cpu() if hasattr(module, "weight") else None
    return y.indices.cpu(), y.features.detach().cpu(), features.grad.cpu(), weight_grad


@settings(max_examples=60, deadline=None)
@given(case=conv_cases())
def test_conv_and_pool_on_cuda_match_cpu(case):
    torch.backends.cuda.matmul.allow_tf32 = False
    x = case_tensor(case)
    pool_cls = SparseMaxPool3d if case["ndim"] == 3 else SparseMaxPool2d
    for make in (
        lambda: case_conv(case),
        lambda: case_conv(case, subm=True),
        lambda: pool_cls(case["kernel_size"], case["stride"], case["padding"], case["dilation"]),
    ):
        torch.manual_seed(case["seed"])
        module = make()
        cpu = _run(copy.deepcopy(module), x, "cpu")
        cuda = _run(copy.deepcopy(module), x, "cuda")
        assert torch.equal(cpu[0], cuda[0])
        for a, b in zip(cpu[1:], cuda[1:]):
            if a is not None:
                torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-3), (torch.float16, 1e-2), (torch.bfloat16, 3e-2)])
def test_second_encoder_on_a_real_scan_on_cuda(dtype, tolerance):
    from ada3d.benchmark.sparse_encoder import build_encoder, voxelize_frame
    from tests.conftest import KITTI_DEMO_ROOT

    path = f"{KITTI_DEMO_ROOT}/training/velodyne/000008.bin"
    features, coors, _ = voxelize_frame(Path(path), torch.device("cpu"))
    reference = build_encoder(torch.device("cpu"), torch.float64).eval()
    encoder = build_encoder(torch.device("cuda"), dtype).eval()
    with torch.no_grad():
        expected = reference(features.double(), coors, 1)
        actual = encoder(features.cuda().to(dtype), coors.cuda(), 1).double().cpu()
    assert torch.isfinite(actual).all()
    assert float((actual - expected).norm() / expected.norm()) < tolerance
