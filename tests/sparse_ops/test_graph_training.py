"""Padded training and CUDA-graph training (sparse_ops.graph_training): BatchNorm statistics over the real rows
only, and a padded / replayed training step with the outputs, gradients and running statistics of an eager one.
The eager padded path (``capture=False``) runs on the CPU in float64; the graphs run on a CUDA device."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch import nn

from ada3d.models.middle_encoders import SparseEncoder, VoxelResBackBone8x
from sparse_ops import SparseTensor
from sparse_ops.graph_training import CudaGraphTrainer
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.nn import apply_to_features, masked_batch_norm
from tests.conftest import KITTI_DEMO_ROOT
from tests.sparse_ops.cases import random_sparse_tensor


@pytest.fixture(autouse=True)
def _ieee(ieee_fp32):
    """Every test here in IEEE fp32 (see tests/conftest.py)."""


@pytest.mark.parametrize("momentum", [0.1, None])
def test_masked_batch_norm_equals_batch_norm_on_the_real_rows(momentum):
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(50, 6, generator=generator, dtype=torch.float64) * 3 + 1
    valid = torch.rand(50, generator=generator) < 0.7
    features[~valid] = 1e30  # whatever padding rows hold must not reach the statistics
    reference = nn.BatchNorm1d(6, momentum=momentum).double()
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2.0)
        reference.bias.uniform_(-1.0, 1.0)
    masked = nn.BatchNorm1d(6, momentum=momentum).double()
    masked.load_state_dict(reference.state_dict())
    grad = torch.randn(int(valid.sum()), 6, generator=generator, dtype=torch.float64)
    for _ in range(3):  # running statistics over several steps (the cumulative average for momentum None)
        x_ref = features[valid].clone().requires_grad_(True)
        x = features.clone().requires_grad_(True)
        expected = reference(x_ref)
        out = masked_batch_norm(masked, x, valid)
        torch.testing.assert_close(out[valid], expected, rtol=1e-12, atol=1e-12)
        assert torch.isfinite(out).all()
        (expected * grad).sum().backward()
        full_grad = torch.zeros_like(out)
        full_grad[valid] = grad
        (out * full_grad).sum().backward()
        torch.testing.assert_close(x.grad[valid], x_ref.grad, rtol=1e-10, atol=1e-12)
        assert (x.grad[~valid] == 0).all()
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(masked, name), getattr(reference, name), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(masked.weight.grad, reference.weight.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(masked.bias.grad, reference.bias.grad, rtol=1e-10, atol=1e-12)


def test_masked_batch_norm_without_real_rows_keeps_the_running_statistics():
    norm = nn.BatchNorm1d(3)
    norm.running_mean.fill_(2.0)
    out = masked_batch_norm(norm, torch.randn(4, 3), torch.zeros(4, dtype=torch.bool))
    assert torch.isfinite(out).all()
    assert (norm.running_mean == 2.0).all() and (norm.running_var == 1.0).all() and norm.num_batches_tracked == 0


def test_apply_to_features_masks_only_in_padded_training_and_refuses_sync_batch_norm():
    norm = nn.BatchNorm1d(1, affine=False)
    with padded_execution(CapacityPlan()):
        indices = torch.tensor([[0, 0, 0, 0], [0, 0, 0, 1], [-1, -1, -1, -1]])  # the last row: padding
        x = SparseTensor(torch.tensor([[1.0], [3.0], [100.0]]), indices, (2, 2, 2), 1)
        padded = apply_to_features(norm, x)
        assert torch.allclose(padded[:2, 0], torch.tensor([-1.0, 1.0]), atol=1e-3)  # the 100 is not counted
        norm.eval()
        assert torch.equal(apply_to_features(norm, x), norm(x.features))  # eval: the running statistics
        with pytest.raises(NotImplementedError, match="SyncBatchNorm"):
            apply_to_features(nn.SyncBatchNorm(1).train(), x)
    norm.train()
    assert not torch.allclose(apply_to_features(norm, x)[:2, 0], padded[:2, 0], atol=1e-3)  # unpadded: all rows


def _loss(out: torch.Tensor) -> torch.Tensor:
    """A loss whose gradient differs at every output value (seeded, so equal for equal shapes)."""
    generator = torch.Generator(out.device).manual_seed(3)
    return (out * torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)).sum()


def _step(module: nn.Module, run, features: torch.Tensor, coors: torch.Tensor, batch_size: int):
    """One training step of ``run`` (``module`` or a trainer of it): the output and the parameters' gradients."""
    module.zero_grad(set_to_none=True)
    out = run(features, coors, batch_size)
    _loss(out).backward()
    return out.detach(), {n: p.grad.clone() for n, p in module.named_parameters()}


def _assert_same_step(module_a, module_b, step_a, step_b, rtol, atol):
    torch.testing.assert_close(step_a[0], step_b[0], rtol=rtol, atol=atol)
    assert step_a[1].keys() == step_b[1].keys()
    for name in step_a[1]:
        torch.testing.assert_close(step_a[1][name], step_b[1][name], rtol=rtol, atol=atol, msg=name)
    for (name, a), b in zip(module_a.named_buffers(), module_b.buffers()):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=name)


def _assert_close_steps(module_a, module_b, step_a, step_b, output: float, gradients: float, buffers: float):
    """Steps equal up to float rounding: each tensor's largest difference relative to its largest value.

    (A random-weighted loss over a whole BEV map makes the gradient sums cancel heavily: in fp32 on a real scan,
    eager and graphed gradients are both ~1e-3 of their maximum from a float64 reference, measured on an H100.)
    """

    def check(a: torch.Tensor, b: torch.Tensor, tolerance: float, name: str) -> None:
        error = float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp(min=1e-30))
        assert error <= tolerance, f"{name}: {error:.2e} of the largest value (allowed {tolerance:.0e})"

    check(step_a[0], step_b[0], output, "output")
    for name in step_a[1]:
        check(step_a[1][name], step_b[1][name], gradients, name)
    for (name, a), b in zip(module_a.named_buffers(), module_b.buffers()):
        if a.is_floating_point():
            check(a, b, buffers, name)
        else:
            assert torch.equal(a, b), name


def _twin(build, dtype=torch.float64):
    torch.manual_seed(0)
    module = build().to(dtype).train()
    for m in module.modules():  # non-trivial affine BatchNorms
        if isinstance(m, nn.BatchNorm1d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.uniform_(m.bias, -0.2, 0.2)
    twin = build().to(dtype).train()
    twin.load_state_dict(module.state_dict())
    return module, twin


_NETWORKS = {
    "second": lambda: SparseEncoder(3, (41, 20, 18), base_channels=4, output_channels=8,
                                    encoder_channels=((4,), (8, 8), (8, 8), (8, 8)),
                                    encoder_paddings=((1,), (1, 1), (1, 1), ((0, 1, 1), 1))),
    "centerpoint": lambda: VoxelResBackBone8x(3, (25, 24, 24), channels=(4, 8, 8, 8), output_channels=8),
}  # fmt: skip


@pytest.mark.parametrize("network", sorted(_NETWORKS))
def test_padded_training_equals_eager_training(network):
    """Padded eager training (the trainer's ``capture=False``) = unpadded training, over steps whose inputs
    overflow the learned capacities, so a step is undone and rerun."""
    eager, padded = _twin(_NETWORKS[network])
    trainer = CudaGraphTrainer(padded, padded.sparse_shape, margin=1.0, capture=False)
    x = random_sparse_tensor(padded.sparse_shape, 2, 3, 0.03, seed=1)
    near = torch.argsort(x.indices[:, 3])[:230]  # clustered sites: few strided outputs
    spread = torch.arange(250)  # as many sites spread over the grid (the same bucket): more outputs
    inputs = [(x.features[near], x.indices[near]), (x.features[spread], x.indices[spread]), (x.features, x.indices)]
    for i, (features, coors) in enumerate(inputs):
        captures = trainer.num_captures
        expected = _step(eager, eager, features, coors, 2)
        got = _step(padded, trainer, features, coors, 2)
        _assert_same_step(eager, padded, expected, got, rtol=1e-9, atol=1e-11)
        if i == 1:
            assert trainer.num_captures > captures  # the denser input overflowed, and was rerun exactly


def test_trainer_features_gradient_and_refusals():
    eager, padded = _twin(_NETWORKS["second"])
    trainer = CudaGraphTrainer(padded, padded.sparse_shape, capture=False)
    x = random_sparse_tensor(padded.sparse_shape, 1, 3, 0.02, seed=4)
    grads = []
    for run in (eager, trainer):
        features = x.features.clone().requires_grad_(True)
        run(features, x.indices, 1).square().sum().backward()
        grads.append(features.grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-9, atol=1e-11)
    with torch.no_grad(), pytest.raises(RuntimeError, match="inference"):
        trainer(x.features, x.indices, 1)
    with pytest.raises(ValueError, match="CUDA tensors"):
        CudaGraphTrainer(padded, padded.sparse_shape)(x.features, x.indices, 1)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_masked_batch_norm_on_cuda_kernels_equals_the_reference(dtype):
    """The CUDA path (SyncBatchNorm kernels) = the tensor-operation path, outputs, gradients and statistics."""
    generator = torch.Generator().manual_seed(0)
    features = (torch.randn(5000, 16, generator=generator) * 2 + 3).to(dtype)
    valid = torch.rand(5000, generator=generator) < 0.8
    features[~valid] = 1e4  # padding rows hold anything
    grad = torch.randn(5000, 16, generator=generator).to(dtype)
    results = []
    for device in ("cpu", "cuda"):
        norm = nn.BatchNorm1d(16, momentum=0.1)
        with torch.no_grad():
            norm.weight.copy_(torch.linspace(0.5, 2.0, 16))
            norm.bias.copy_(torch.linspace(-1.0, 1.0, 16))
        norm.to(device)
        x = features.to(device=device, dtype=torch.float32 if device == "cpu" else dtype).clone().requires_grad_(True)
        out = masked_batch_norm(norm, x, valid.to(device))
        out.backward(grad.to(out))
        results.append([out[valid.to(device)], x.grad, norm.weight.grad, norm.bias.grad,
                        norm.running_mean, norm.running_var])  # fmt: skip
    tolerance = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    for name, expected, got in zip(("out", "grad", "weight", "bias", "mean", "var"), *results):
        torch.testing.assert_close(got.float().cpu(), expected.float(), **tolerance, msg=name)


@pytest.fixture(scope="module")
def frames():
    from ada3d.benchmark.sparse_encoder import voxelize_frame

    device = torch.device("cuda")
    return [voxelize_frame(Path(KITTI_DEMO_ROOT) / "training" / "velodyne" / f"{name}.bin", device)[:2]
            for name in ("000001", "000008", "000076")]  # fmt: skip


def _twins_on_cuda(dtype: torch.dtype, count: int = 2) -> list[nn.Module]:
    from ada3d.benchmark.sparse_encoder import build_encoder

    modules = [build_encoder(torch.device("cuda"), dtype).train() for _ in range(count)]
    for module in modules[1:]:
        module.load_state_dict(modules[0].state_dict())
    return modules


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_graphed_training_replays_padded_training_on_real_scans(frames, dtype):
    """Replayed forward + backward graphs = the same padded steps run eagerly, over two rounds of real scans
    (the second replays the captured graphs), running statistics included."""
    eager, graphed = _twins_on_cuda(dtype)
    reference = CudaGraphTrainer(eager, eager.sparse_shape, capture=False)
    trainer = CudaGraphTrainer(graphed, graphed.sparse_shape)
    # The same kernels on the same rows; only the weight gradients' atomic sums may round differently (fp16: by
    # one step of the gradient's rounding, measured 1.8e-4 of the largest value).
    gradients = 1e-5 if dtype == torch.float32 else 2e-3
    for features, coors in frames + frames:
        expected = _step(eager, reference, features.to(dtype), coors, 1)
        got = _step(graphed, trainer, features.to(dtype), coors, 1)
        assert all(torch.isfinite(g).all() for g in got[1].values())
        _assert_close_steps(eager, graphed, expected, got, output=0.0, gradients=gradients, buffers=0.0)
    captures = trainer.num_captures
    assert captures <= 2 * len(frames)
    _step(graphed, trainer, frames[0][0].to(dtype), frames[0][1], 1)
    assert trainer.num_captures == captures  # replayed, not recaptured


@pytest.mark.gpu
def test_graphed_training_is_as_accurate_as_eager_training(frames):
    """Against a float64 CPU step on a real scan, the graphed fp32 step errs no more than the eager one (cuDNN's
    BatchNorm, no padding)."""
    eager, graphed = _twins_on_cuda(torch.float32)
    reference = copy.deepcopy(eager).cpu().double()
    features, coors = frames[0]
    exact = _step(reference, reference, features.cpu().double(), coors.cpu(), 1)
    steps = [_step(eager, eager, features, coors, 1),
             _step(graphed, CudaGraphTrainer(graphed, graphed.sparse_shape), features, coors, 1)]  # fmt: skip

    def error(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a.double().cpu() - b).abs().max() / b.abs().max())

    for name in exact[1]:
        eager_error, graph_error = (error(step[1][name], exact[1][name]) for step in steps)
        assert graph_error <= 1.5 * eager_error + 1e-6, (name, graph_error, eager_error)  # both ~1e-3 (H100)
    assert error(steps[1][0], exact[0]) <= 1.5 * error(steps[0][0], exact[0]) + 1e-6


@pytest.mark.gpu
def test_graphed_training_recaptures_an_overflowing_step(frames):
    eager, graphed = _twins_on_cuda(torch.float32)
    reference = CudaGraphTrainer(eager, eager.sparse_shape, margin=1.0, capture=False)
    trainer = CudaGraphTrainer(graphed, graphed.sparse_shape, margin=1.0)
    features, coors = frames[1]
    count = 8192  # both inputs fall into one bucket
    near = torch.argsort(coors[:, 3])[:count]  # the dense voxels next to the sensor: few strided outputs
    spread = torch.randperm(len(coors), generator=torch.Generator().manual_seed(0))[:count].cuda()  # many
    for rows in (near, spread):
        captures = trainer.num_captures
        expected = _step(eager, reference, features[rows], coors[rows], 1)
        got = _step(graphed, trainer, features[rows], coors[rows], 1)
        _assert_close_steps(eager, graphed, expected, got, output=0.0, gradients=1e-5, buffers=0.0)
    assert len(trainer.captures) == 1 and trainer.num_captures > captures  # the spread input overflowed
