"""The Triton implicit-GEMM dataflows against the dense float64 reference, forward and gradients.

On a GPU the kernels run natively; elsewhere in Triton's interpreter (tests/conftest.py), on tiny inputs.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings

from sparse_ops.conv import ConvConfig
from sparse_ops.kmap import build_kernel_map
from sparse_ops.kmap.neighbor_map import neighbor_map
from sparse_ops.nn import SparseConvolution
from tests.sparse_ops.cases import case_conv, case_tensor, conv_cases
from tests.sparse_ops.reference import dense_conv, dense_inverse_conv, relative_error

pytest.importorskip("triton", reason="the implicit-GEMM dataflow needs Triton")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
CONFIGS = [
    ConvConfig("implicit_gemm", 16, 16, 16, wgrad_row_blocks=2),
    ConvConfig("implicit_gemm", 16, 16, 16, wgrad_row_blocks=2, split_k=3),  # partial sums over thirds of the steps
    ConvConfig("implicit_gemm_sorted", 16, 16, 16),
]


def _on_device(x):
    """``x`` as fp32 on DEVICE with leaf features, and those features."""
    features = x.features.detach().float().to(DEVICE).requires_grad_(True)
    return type(x)(features, x.indices.to(DEVICE), x.spatial_shape, x.batch_size), features


def _check(conv, x, features, config, reference_fn):
    """fp32 implicit GEMM on DEVICE vs the float64 dense reference: values and both gradients."""
    torch.backends.cuda.matmul.allow_tf32 = False
    conv.config = config
    module = conv.float().to(DEVICE)
    y = module(x)
    grad_out = torch.randn(y.features.shape, dtype=torch.float64)
    (y.features * grad_out.float().to(DEVICE)).sum().backward()

    ref_features = features.detach().double().cpu().requires_grad_(True)
    ref_weight = module.weight.detach().double().cpu().requires_grad_(True)
    expected = reference_fn(ref_features, ref_weight, y.indices.cpu())
    (expected * grad_out).sum().backward()
    assert relative_error(y.features, expected) < 1e-5
    assert relative_error(features.grad, ref_features.grad) < 1e-5
    assert relative_error(module.weight.grad, ref_weight.grad) < 1e-5


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.dataflow}-k{c.split_k}")
@settings(max_examples=15, deadline=None)
@given(case=conv_cases())
def test_strided_and_submanifold_match_dense(config, case):
    x = case_tensor(case)
    for subm in (False, True):
        conv = case_conv(case, subm)
        bias = None if conv.bias is None else conv.bias.detach().double()
        geometry = conv.geometry
        x_dev, features = _on_device(x)

        def reference(f, w, out, bias=bias, geometry=geometry):
            return dense_conv(f, x.indices, x.spatial_shape, x.batch_size, w, bias, geometry, out)

        _check(conv, x_dev, features, config, reference)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.dataflow}-k{c.split_k}")
@settings(max_examples=10, deadline=None)
@given(case=conv_cases())
def test_inverse_conv_matches_dense_transpose(config, case):
    x_dev, _ = _on_device(case_tensor(case))
    down = case_conv(case, indice_key="k").float().to(DEVICE)
    down.config = config
    y = down(x_dev)
    features = y.features.detach().requires_grad_(True)
    inverse = SparseConvolution(case["ndim"], case["out_channels"], case["in_channels"], case["kernel_size"],
                                bias=False, inverse=True, indice_key="k")  # fmt: skip
    y_cpu_indices = y.indices.cpu()
    _check(inverse, y.replace_feature(features), features, config,
           lambda f, w, out: dense_inverse_conv(f, y_cpu_indices, y.spatial_shape, y.batch_size, w, None,
                                                down.geometry, x_dev.spatial_shape, out))  # fmt: skip


def test_neighbor_tables_hold_every_pair_and_tiles_cover_their_rows():
    x = case_tensor(dict(spatial_shape=(6, 7, 5), batch_size=2, in_channels=1, density=0.3, seed=4))
    kmap = build_kernel_map(x.indices, x.spatial_shape, SparseConvolution(3, 1, 1, 3, 2, 1).geometry)
    forward_map, backward_map = neighbor_map(kmap, "forward"), neighbor_map(kmap, "backward")
    assert neighbor_map(kmap, "forward") is forward_map  # cached on the map
    assert int((forward_map.nbr >= 0).sum()) == kmap.num_pairs == int((backward_map.nbr >= 0).sum())
    offsets = torch.repeat_interleave(torch.arange(27), torch.tensor(kmap.offset_counts))
    assert torch.equal(forward_map.nbr[kmap.out_rows, offsets].long(), kmap.in_rows)
    assert torch.equal(backward_map.nbr[kmap.in_rows, offsets].long(), kmap.out_rows)
    order, tile_masks = forward_map.sorted_tiles(16)
    assert sorted(order.tolist()) == list(range(kmap.num_out))
    for tile, mask in enumerate(tile_masks.tolist()):
        rows = order[tile * 16 : (tile + 1) * 16].long()
        union = 0
        for bits in forward_map.bitmask[rows].tolist():
            union |= bits
        assert union == mask


def test_config_rejects_unknown_dataflows_and_bad_tiles():
    with pytest.raises(ValueError, match="dataflow must be one of"):
        ConvConfig("winograd")
    with pytest.raises(ValueError, match="block_n must be a power of two >= 16"):
        ConvConfig("implicit_gemm", block_n=24)
    for dataflow, split in (("implicit_gemm", 0), ("implicit_gemm_sorted", 3), ("gather_scatter", 2)):
        with pytest.raises(ValueError, match="split_k must be >= 1"):
            ConvConfig(dataflow, split_k=split)
