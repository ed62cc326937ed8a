"""SparseSECOND: sparse and dense executions agree (forward, gradients, running statistics), the active set
dilates and downsamples as a regular sparse conv says, the work is proportional to the kept pixels."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ada3d.models.adaptive.sp_norm import SparsityPreservingBatchNorm
from ada3d.models.backbones.second import SECOND
from ada3d.models.backbones.sparse_second import SparseSECOND
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConvolution

ARGS = dict(in_channels=4, out_channels=(6, 8), layer_nums=(2, 1))


def bev_input(occupied: torch.Tensor, channels: int = 4, seed: int = 0) -> SparseTensor:
    """Random float64 features at the True pixels of ``occupied`` ``[B, H, W]``."""
    generator = torch.Generator().manual_seed(seed)
    indices = occupied.nonzero().int()
    features = torch.randn(len(indices), channels, generator=generator, dtype=torch.float64)
    return SparseTensor(features, indices, occupied.shape[1:], occupied.shape[0])


def random_occupancy(shape, density, seed):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < density


def build(execution: str = "sparse", layer_strides=(1, 2), seed: int = 0, dilating_convs=None) -> SparseSECOND:
    torch.manual_seed(seed)
    model = SparseSECOND(**ARGS, layer_strides=layer_strides, execution=execution, dilating_convs=dilating_convs)
    model = model.double()
    with torch.no_grad():  # non-trivial norm parameters, so a mix-up between layers shows
        for module in model.modules():
            if isinstance(module, SparsityPreservingBatchNorm):
                module.weight.uniform_(0.5, 1.5)
                module.running_var.uniform_(0.5, 2.0)
    return model


def run(model: SparseSECOND, x: SparseTensor, grad_seed: int = 1):
    """Outputs, and the gradients of ``sum(out_i * g_i)`` w.r.t. the input features and every parameter."""
    features = x.features.clone().requires_grad_()
    outputs = model(x.replace_feature(features))
    generator = torch.Generator().manual_seed(grad_seed)
    loss = sum(
        (out * torch.randn(out.shape, generator=generator, dtype=torch.float64).to(out)).sum() for out in outputs
    )
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(loss, [features, *params.values()])
    return [out.detach() for out in outputs], dict(zip(["input", *params], grads))


def test_builds_from_config_with_second_names_and_spbn():
    model = MODELS.build(dict(type="SparseSECOND", **ARGS, layer_strides=(1, 2)))
    assert model.out_channels == [6, 8] and model.strides == [1, 2] and model.execution == "sparse"
    state = model.state_dict()
    assert state["blocks.0.0.weight"].shape == (6, 3, 3, 4)  # [C_out, kh, kw, C_in]
    assert state["blocks.0.6.weight"].shape == (6, 3, 3, 6)
    assert state["blocks.1.1.running_var"].shape == (8,)
    assert all(k.split(".")[-1] in ("weight", "running_var") for k in state)  # no bias, no running mean
    norm = model.blocks[0][1]
    assert type(norm) is SparsityPreservingBatchNorm and norm.eps == 1e-3 and norm.momentum == 0.01
    dense = build("dense")
    dense.load_state_dict(build("sparse", seed=1).state_dict())  # one state dict for both executions


def test_bad_arguments_and_inputs_raise():
    with pytest.raises(ValueError, match="execution must be one of"):
        SparseSECOND(**ARGS, layer_strides=(1, 2), execution="fast")
    with pytest.raises(ValueError, match="norm_cfg type must be 'SPBN'"):
        SparseSECOND(**ARGS, layer_strides=(1, 2), norm_cfg=dict(type="BN1d"))
    with pytest.raises(ValueError, match="one entry per stage"):
        SparseSECOND(4, (6, 8), (1,), (1, 2))
    for bad in ((1,), (0, 1), (4, 1)):  # one per stage, 1 .. 1 + layer_nums[i] (layer_nums (2, 1))
        with pytest.raises(ValueError, match="dilating_convs needs one count per stage"):
            SparseSECOND(**ARGS, layer_strides=(1, 2), dilating_convs=bad)
    model = build()
    with pytest.raises(ValueError, match="2D SparseTensor with 4 channels"):
        model(bev_input(random_occupancy((1, 5, 5), 0.5, 0), channels=3))
    with pytest.raises(ValueError, match="execution must be one of"):
        model.execution = "Dense"


@pytest.mark.parametrize("layer_strides, dilating_convs", [((1, 2), None), ((2, 2), None), ((1, 2), (3, 2))])
@pytest.mark.parametrize("density", [0.15, 1.0])
def test_sparse_equals_dense_execution_in_training(density, layer_strides, dilating_convs):
    x = bev_input(random_occupancy((2, 13, 11), density, seed=2))
    sparse = build("sparse", layer_strides, dilating_convs=dilating_convs)
    dense = build("dense", layer_strides, dilating_convs=dilating_convs)
    sparse_out, sparse_grads = run(sparse, x)
    dense_out, dense_grads = run(dense, x)
    for a, b in zip(sparse_out, dense_out):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    assert sparse_grads.keys() == dense_grads.keys()
    for name in sparse_grads:
        torch.testing.assert_close(sparse_grads[name], dense_grads[name], rtol=1e-10, atol=1e-12, msg=name)
    for (name, a), b in zip(sparse.named_buffers(), dense.buffers()):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=name)


def test_sparse_equals_dense_execution_in_eval():
    x = bev_input(random_occupancy((2, 13, 11), 0.2, seed=3))
    sparse, dense = build("sparse").eval(), build("dense").eval()
    sparse_out, sparse_grads = run(sparse, x)
    dense_out, dense_grads = run(dense, x)
    for a, b in zip(sparse_out, dense_out):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for name in sparse_grads:
        torch.testing.assert_close(sparse_grads[name], dense_grads[name], rtol=1e-10, atol=1e-12, msg=name)


def _sites(x: SparseTensor) -> torch.Tensor:
    occupied = torch.zeros((x.batch_size, *x.spatial_shape), dtype=torch.bool)
    occupied[tuple(x.indices.long().unbind(1))] = True
    return occupied


@pytest.mark.parametrize("density", [0.1, 1.0])
def test_active_set_dilates_then_downsamples(density):
    occupied = random_occupancy((2, 13, 11), density, seed=4)
    stages = build().forward_sparse(bev_input(occupied))
    dilated = F.max_pool2d(occupied.double().unsqueeze(1), 3, 1, 1).squeeze(1) > 0
    downsampled = F.max_pool2d(dilated.double().unsqueeze(1), 3, 2, 1).squeeze(1) > 0
    assert torch.equal(_sites(stages[0]), dilated)
    assert torch.equal(_sites(stages[1]), downsampled)
    if density == 1.0:
        assert bool(dilated.all()) and bool(downsampled.all())
    outputs = build()(bev_input(occupied))
    assert torch.all(outputs[0].abs().sum(1)[~dilated] == 0) and torch.all(outputs[1].abs().sum(1)[~downsampled] == 0)


def test_dilating_convs_grow_the_active_set_by_one_cell_each_and_share_the_parameters():
    occupied = random_occupancy((2, 17, 15), 0.05, seed=5)
    model = build(dilating_convs=(3, 2))
    stages = model.forward_sparse(bev_input(occupied))
    dilated = F.max_pool2d(occupied.double().unsqueeze(1), 7, 1, 3).squeeze(1) > 0  # three 3x3 dilations
    downsampled = F.max_pool2d(dilated.double().unsqueeze(1), 3, 2, 1).squeeze(1) > 0
    twice = F.max_pool2d(downsampled.double().unsqueeze(1), 3, 1, 1).squeeze(1) > 0
    assert torch.equal(_sites(stages[0]), dilated) and torch.equal(_sites(stages[1]), twice)
    assert not torch.equal(dilated, F.max_pool2d(occupied.double().unsqueeze(1), 3, 1, 1).squeeze(1) > 0)
    regular = [m for m in model.modules() if isinstance(m, SparseConvolution) and not m.geometry.subm]
    assert len(regular) == 5
    default = build()  # same parameter names and shapes: a checkpoint of either loads into the other
    default.load_state_dict(model.state_dict())
    assert {k: v.shape for k, v in default.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def _kernel_map_sizes(model: SparseSECOND, x: SparseTensor) -> list[int]:
    """Active sites of each stage and the (input, output) pairs of every conv's kernel map."""
    stages = model.forward_sparse(x)
    sizes, stage_input = [], x
    for block, stage in zip(model.blocks, stages):
        convs = [m for m in block if isinstance(m, SparseConvolution)]
        strided, subm = convs[0], convs[1]
        first = stage.kernel_maps.lookup(
            strided.indice_key, strided.geometry, stage_input.indices, stage_input.spatial_shape
        )
        shared = stage.kernel_maps.lookup(subm.indice_key, subm.geometry, stage.indices, stage.spatial_shape)
        sizes += [stage.indices.shape[0], first.num_pairs, shared.num_pairs]
        stage_input = stage
    return sizes


def test_work_is_proportional_to_the_kept_pixels():
    """Kept pixels far apart (every 8th cell) have disjoint receptive fields in both stages, so every count
    of the sparse execution (active sites, kernel-map pairs) is exactly (kept pixels) x (count for one)."""
    model = build().eval()
    lattice = torch.zeros(1, 64, 64, dtype=torch.bool)
    lattice[0, 4::8, 4::8] = True
    candidates = lattice.nonzero()
    single = torch.zeros_like(lattice)
    single[0, 4, 4] = True
    one = _kernel_map_sizes(model, bev_input(single))
    assert one[:3] == [9, 9, 9 + 4 * 6 + 4 * 4]  # a 3x3 block: its centre sees 9 sites, edges 6, corners 4
    for kept in (4, 16, 64):
        occupied = lattice.new_zeros(lattice.shape)
        occupied[tuple(candidates[torch.randperm(64)[:kept]].unbind(1))] = True
        assert _kernel_map_sizes(model, bev_input(occupied)) == [kept * n for n in one]


def test_empty_sample_and_empty_batch():
    occupied = random_occupancy((2, 13, 11), 0.3, seed=5)
    occupied[1] = False
    for execution in ("sparse", "dense"):
        outputs = build(execution)(bev_input(occupied))
        for out in outputs:
            assert out[0].abs().sum() > 0 and torch.equal(out[1], torch.zeros_like(out[1]))
        outputs = build(execution)(bev_input(torch.zeros(2, 13, 11, dtype=torch.bool)))
        assert [tuple(o.shape) for o in outputs] == [(2, 6, 13, 11), (2, 8, 7, 6)]
        assert all(torch.equal(o, torch.zeros_like(o)) for o in outputs)


def test_dense_second_conv_weights_load_and_give_the_dense_convs():
    dense_second = SECOND(**ARGS, layer_strides=(1, 2)).double()
    model = build("dense")
    model.load_dense_second_weights({f"backbone.{k}": v for k, v in dense_second.state_dict().items()}, "backbone.")
    x = bev_input(torch.ones(1, 6, 5, dtype=torch.bool))
    first_conv = F.conv2d(x.dense(), dense_second.blocks[0][0].weight, padding=1)
    torch.testing.assert_close(model.blocks[0][0](x).dense(), first_conv, rtol=1e-12, atol=1e-12)
    state = dense_second.state_dict()
    state["blocks.1.3.weight"] = state["blocks.1.3.weight"][:, :4]
    del state["blocks.0.6.weight"]
    with pytest.raises(ValueError, match=r"blocks\.0\.6\.weight missing; blocks\.1\.3\.weight has shape"):
        model.load_dense_second_weights(state)


@pytest.mark.gpu
# fp16 gradients of a whole two-stage network with batch statistics: the weight gradients sum fp16 products
# over every site of both stages (5.5% seen on an H100); the kernels alone are held to 1e-2 in tests/sparse_ops.
@pytest.mark.parametrize("dtype, tolerance, grad_tolerance", [(torch.float32, 1e-4, 1e-4), (torch.float16, 1e-2, 1e-1)])
@pytest.mark.parametrize("training", [True, False])
def test_sparse_execution_on_cuda_matches_cpu_float64(dtype, tolerance, grad_tolerance, training, monkeypatch):
    """Outputs, gradients and running statistics of the CUDA kernels (implicit GEMM) against CPU float64
    (relative L2 errors; fp16 gradients pass through 6 ReLU kinks and fp16 weight gradients)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    x = bev_input(random_occupancy((2, 40, 36), 0.2, seed=6))
    reference = build().train(training)
    model = copy.deepcopy(reference).to("cuda", dtype)
    expected, expected_grads = run(reference, x)
    cuda_x = SparseTensor(x.features.to("cuda", dtype), x.indices.cuda(), x.spatial_shape, x.batch_size)
    actual, actual_grads = run(model, cuda_x)
    for name, a, e, limit in [
        *((f"stage {i}", a, e, tolerance) for i, (a, e) in enumerate(zip(actual, expected))),
        *((f"grad of {k}", actual_grads[k], v, grad_tolerance) for k, v in expected_grads.items()),
    ]:
        a = a.double().cpu()
        assert torch.isfinite(a).all(), name
        assert float((a - e).norm() / e.norm()) < limit, name
    for a, e in zip(model.buffers(), reference.buffers()):
        torch.testing.assert_close(a.double().cpu(), e, rtol=tolerance, atol=tolerance)
