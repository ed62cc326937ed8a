"""Sparsity-preserving BatchNorm: a float64 oracle (train, eval, running_var, gradients), the masked dense
layout against the row layout, fp16 statistics, and global statistics over two gloo ranks."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ada3d.models.adaptive.sp_norm import (
    SparsityPreservingBatchNorm,
    SparsityPreservingBatchNorm1d,
    SparsityPreservingBatchNorm2d,
    sparsity_preserving_batch_norm,
)
from ada3d.registry import MODELS

EPS, MOMENTUM = 1e-3, 0.01


def reference_rows(x, weight, running_var, training):
    """Ada3D's SP-BN on [N, C] rows, written out in float64: (output, new running_var)."""
    x, weight, running_var = x.double(), weight.double(), running_var.double()
    if training:
        variance = ((x - x.mean(dim=0)) ** 2).mean(dim=0)
        running_var = (1 - MOMENTUM) * running_var + MOMENTUM * variance
    else:
        variance = running_var
    return x / torch.sqrt(variance + EPS) * weight, running_var


def random_rows(num_rows, channels, seed):
    generator = torch.Generator().manual_seed(seed)
    scale = torch.rand(channels, generator=generator, dtype=torch.float64) * 3 + 0.1
    offset = torch.randn(channels, generator=generator, dtype=torch.float64) * 2
    return torch.randn(num_rows, channels, generator=generator, dtype=torch.float64) * scale + offset


def random_masked_map(shape, density, seed):
    """A [B, C, H, W] float64 map, non-zero exactly on a random [B, H, W] mask."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape[0], *shape[2:], generator=generator) < density
    values = torch.randn(shape, generator=generator, dtype=torch.float64) + 0.5
    return values * mask.unsqueeze(1), mask


def test_registered_under_config_names_with_second_defaults():
    for name, cls in [
        ("SPBN", SparsityPreservingBatchNorm),
        ("SPBN1d", SparsityPreservingBatchNorm1d),
        ("SparsityPreservingBatchNorm1d", SparsityPreservingBatchNorm1d),
        ("SPBN2d", SparsityPreservingBatchNorm2d),
    ]:
        norm = MODELS.build(dict(type=name, num_features=5))
        assert type(norm) is cls and norm.eps == 1e-3 and norm.momentum == 0.01
    state = MODELS.build(dict(type="SPBN1d", num_features=5)).state_dict()
    assert list(state) == ["weight", "running_var"]  # no bias, no running mean


def test_zeros_stay_zero_and_output_is_zero_outside_an_explicit_mask():
    x, mask = random_masked_map((2, 3, 6, 5), 0.4, seed=0)
    norm = SparsityPreservingBatchNorm2d(3).double()
    y = norm(x)  # default mask: any non-zero channel
    assert torch.equal(y == 0, x == 0)
    noisy = x + (~mask).unsqueeze(1) * 7.0  # values outside the mask must be ignored and zeroed
    torch.testing.assert_close(norm(noisy, mask), y, rtol=0, atol=1e-14)
    norm.eval()
    assert torch.equal(norm(x) == 0, x == 0)


def test_rows_match_the_float64_reference_in_training_and_eval():
    norm = SparsityPreservingBatchNorm1d(4).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.5]))
    running_var = norm.running_var.clone()
    for step in range(4):
        x = random_rows(50 + 10 * step, 4, seed=step)
        expected, running_var = reference_rows(x, norm.weight.detach(), running_var, training=True)
        torch.testing.assert_close(norm(x), expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(norm.running_var, running_var, rtol=1e-12, atol=1e-14)
    assert (norm.running_var - 1).abs().max() > 1e-2  # the steps moved it
    norm.eval()
    trained_var = norm.running_var.clone()
    x = random_rows(30, 4, seed=10)
    expected, _ = reference_rows(x, norm.weight.detach(), running_var, training=False)
    torch.testing.assert_close(norm(x), expected, rtol=1e-12, atol=1e-12)
    assert torch.equal(norm.running_var, trained_var)  # eval leaves it alone


def test_gradients_match_autograd_of_the_reference_and_gradcheck():
    x = random_rows(9, 3, seed=1).requires_grad_()
    weight = torch.tensor([0.7, -1.2, 2.0], dtype=torch.float64, requires_grad=True)
    grad_out = random_rows(9, 3, seed=2)
    y = sparsity_preserving_batch_norm(
        x, weight, torch.ones(3, dtype=torch.float64), training=True, momentum=MOMENTUM, eps=EPS
    )
    got = torch.autograd.grad(y, (x, weight), grad_out)
    expected_y, _ = reference_rows(x, weight, torch.ones(3, dtype=torch.float64), training=True)
    expected = torch.autograd.grad(expected_y, (x, weight), grad_out)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)

    def rows(x, weight):
        return sparsity_preserving_batch_norm(
            x, weight, torch.ones(3, dtype=torch.float64), training=True, momentum=MOMENTUM, eps=EPS
        )

    assert torch.autograd.gradcheck(rows, (x, weight))
    dense, mask = random_masked_map((2, 3, 3, 2), 0.6, seed=3)

    def masked(dense, weight):
        return sparsity_preserving_batch_norm(
            dense, weight, torch.ones(3, dtype=torch.float64), training=True, momentum=MOMENTUM, eps=EPS, mask=mask
        )

    assert torch.autograd.gradcheck(masked, (dense.requires_grad_(), weight))


@pytest.mark.parametrize("training", [True, False])
def test_masked_map_equals_rows_gathered_at_the_mask(training):
    dense, mask = random_masked_map((2, 5, 7, 6), 0.3, seed=4)
    dense.requires_grad_()
    rows = dense.detach().permute(0, 2, 3, 1)[mask].requires_grad_()
    norm_2d = SparsityPreservingBatchNorm2d(5).double().train(training)
    with torch.no_grad():
        norm_2d.weight.uniform_(0.5, 2.0)
        norm_2d.running_var.uniform_(0.5, 2.0)
    norm_1d = SparsityPreservingBatchNorm1d(5).double().train(training)
    norm_1d.load_state_dict(norm_2d.state_dict())
    out_2d, out_1d = norm_2d(dense, mask), norm_1d(rows)
    torch.testing.assert_close(out_2d.permute(0, 2, 3, 1)[mask], out_1d, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(norm_2d.running_var, norm_1d.running_var, rtol=1e-13, atol=1e-15)
    grad_rows = random_rows(len(rows), 5, seed=5)
    grad_dense = torch.zeros_like(dense).permute(0, 2, 3, 1)
    grad_dense[mask] = grad_rows
    out_2d.backward(grad_dense.permute(0, 3, 1, 2))
    out_1d.backward(grad_rows)
    torch.testing.assert_close(dense.grad.permute(0, 2, 3, 1)[mask], rows.grad, rtol=1e-12, atol=1e-12)
    assert torch.all(dense.grad.permute(0, 2, 3, 1)[~mask] == 0)
    torch.testing.assert_close(norm_2d.weight.grad, norm_1d.weight.grad, rtol=1e-12, atol=1e-12)


def test_no_active_site_leaves_running_var_untouched():
    norm = SparsityPreservingBatchNorm1d(3)
    out = norm(torch.zeros(0, 3))
    assert out.shape == (0, 3) and torch.equal(norm.running_var, torch.ones(3))
    norm_2d = SparsityPreservingBatchNorm2d(3)
    assert torch.equal(norm_2d(torch.zeros(1, 3, 4, 4)), torch.zeros(1, 3, 4, 4))
    assert torch.equal(norm_2d.running_var, torch.ones(3))


def test_half_precision_statistics_do_not_overflow():
    x = random_rows(4000, 3, seed=6) * 50 + 200  # sum of squares ~ 1.6e8, far beyond fp16's 65504
    norm = SparsityPreservingBatchNorm1d(3).half()
    y = norm(x.half())
    expected, running_var = reference_rows(x.half().double(), torch.ones(3), torch.ones(3), training=True)
    assert y.dtype == torch.float16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.double(), expected, rtol=2e-3, atol=2e-3)
    torch.testing.assert_close(norm.running_var.double(), running_var, rtol=2e-3, atol=0)


def test_bad_inputs_raise_with_the_shapes():
    with pytest.raises(ValueError, match=r"needs \[N, 4\] rows"):
        SparsityPreservingBatchNorm(4)(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        SparsityPreservingBatchNorm2d(4)(torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"\[N, C\] features"):
        SparsityPreservingBatchNorm1d(4)(torch.zeros(1, 4, 2, 2))
    with pytest.raises(ValueError, match="mask must be bool"):
        SparsityPreservingBatchNorm2d(4)(torch.zeros(1, 4, 2, 2), torch.zeros(1, 2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="momentum"):
        SparsityPreservingBatchNorm1d(4, momentum=1.5)


# --- two ranks (gloo on CPU) must normalise with the statistics of the whole batch -------------------------
WORLD_SIZE, CHANNELS, NUM_ROWS = 2, 3, 12
# rows of rank 0 per case: an uneven split, and rank 1 without any active site
SPLITS = (5, NUM_ROWS)


def _ddp_case():
    weight = torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64)
    return random_rows(NUM_ROWS, CHANNELS, seed=7), random_rows(NUM_ROWS, CHANNELS, seed=8), weight


def _run_norm(x, grad_out, weight):
    """Train-mode forward + backward of one SP-BN: (output, input grad, weight grad, running_var)."""
    norm = SparsityPreservingBatchNorm1d(CHANNELS).double()
    with torch.no_grad():
        norm.weight.copy_(weight)
    x = x.clone().requires_grad_()
    y = norm(x)
    y.backward(grad_out)
    return y.detach(), x.grad, norm.weight.grad, norm.running_var


def _ddp_worker(rank, init_file, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        x, grad_out, weight = _ddp_case()
        results = []
        for split in SPLITS:
            rows = slice(0, split) if rank == 0 else slice(split, NUM_ROWS)
            results.append(_run_norm(x[rows], grad_out[rows], weight))
        torch.save(results, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_ranks_normalise_with_global_statistics_and_gradients(tmp_path):
    mp.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path / "out")), nprocs=WORLD_SIZE, join=True)
    ranks = [torch.load(tmp_path / f"out.{rank}") for rank in range(WORLD_SIZE)]
    x, grad_out, weight = _ddp_case()
    y, x_grad, weight_grad, running_var = _run_norm(x, grad_out, weight)  # one process, the whole batch
    for case, split in enumerate(SPLITS):
        (y0, x_grad0, w_grad0, var0), (y1, x_grad1, w_grad1, var1) = ranks[0][case], ranks[1][case]
        assert y1.shape == (NUM_ROWS - split, CHANNELS)
        torch.testing.assert_close(torch.cat([y0, y1]), y, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(torch.cat([x_grad0, x_grad1]), x_grad, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(w_grad0 + w_grad1, weight_grad, rtol=1e-12, atol=1e-12)  # DDP sums these
        torch.testing.assert_close(var0, running_var, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(var1, running_var, rtol=1e-12, atol=1e-14)
