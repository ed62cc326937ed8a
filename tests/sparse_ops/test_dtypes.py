"""fp32 / fp16 / bf16 features against the float64 result; autocast; fp32 accumulation."""

from __future__ import annotations

import pytest
import torch

from sparse_ops.nn import SparseConv3d, SubMConv3d
from tests.sparse_ops.cases import random_sparse_tensor
from tests.sparse_ops.reference import relative_error

TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("conv_cls, args", [(SubMConv3d, (3,)), (SparseConv3d, (3, 2, 1))])
def test_low_precision_matches_float64(dtype, conv_cls, args):
    x64 = random_sparse_tensor((10, 12, 14), 2, 16, 0.2, seed=5)
    conv64 = conv_cls(16, 32, *args).double()
    conv = conv_cls(16, 32, *args).to(dtype)
    conv.load_state_dict(conv64.state_dict())
    features64 = x64.features.clone().requires_grad_(True)
    features = x64.features.to(dtype).requires_grad_(True)
    y64 = conv64(x64.replace_feature(features64))
    y = conv(x64.replace_feature(features))
    assert y.features.dtype == dtype
    grad_out = torch.randn_like(y64.features)
    (y64.features * grad_out).sum().backward()
    (y.features * grad_out.to(dtype)).sum().backward()
    tol = TOLERANCE[dtype]
    assert relative_error(y.features, y64.features) < tol
    assert relative_error(features.grad, features64.grad) < tol
    assert relative_error(conv.weight.grad, conv64.weight.grad) < tol
    assert torch.isfinite(y.features).all()


def test_accumulation_across_offsets_is_fp32():
    """27 offsets each adding 1 + 2^-10 would lose the small part if summed in fp16 (spacing 2^-6 at 27)."""
    x = random_sparse_tensor((5, 5, 5), 1, 1, 1.0, seed=0, dtype=torch.float16)
    x = x.replace_feature(torch.ones_like(x.features))
    conv = SubMConv3d(1, 1, 3, bias=False).half()
    with torch.no_grad():
        conv.weight.fill_(1 + 2**-10)
    y = conv(x)
    centre = (x.indices[:, 1:] == 2).all(dim=1)
    fp32_sum = torch.tensor(27 * (1 + 2**-10), dtype=torch.float32).half().item()  # 27.03125
    fp16_sum = torch.tensor(0.0, dtype=torch.float16)
    for _ in range(27):
        fp16_sum = fp16_sum + torch.tensor(1 + 2**-10, dtype=torch.float16)
    assert fp16_sum.item() != fp32_sum
    assert y.features[centre].item() == fp32_sum


def test_autocast_runs_in_bfloat16():
    x = random_sparse_tensor((6, 6, 6), 1, 4, 0.3, seed=1, dtype=torch.float32)
    conv = SubMConv3d(4, 8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = conv(x)
    assert y.features.dtype == torch.bfloat16
    y.features.float().sum().backward()
    assert conv.weight.grad.dtype == torch.float32
