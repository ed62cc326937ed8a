"""ImportancePredictor and importance_loss: shapes, detached input, fitting a centre heatmap."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from ada3d.benchmark.flops import FlopCounter
from ada3d.models.adaptive import importance_predictor
from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.column_ops import pool_to_grid, site_cells
from ada3d.models.adaptive.heatmap import centre_heatmap
from ada3d.models.adaptive.importance_predictor import ImportancePredictor, importance_loss
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from tests.ada3d.adaptive.test_column_ops import random_sparse
from tests.ada3d.adaptive.test_padded_column_ops import padded

IN_CHANNELS = {"encoder_layer2": 32, "encoder_layer3": 64, "bev": 128}


def test_one_adapter_per_input_and_one_shared_body():
    predictor = ImportancePredictor(IN_CHANNELS, hidden_channels=16, groups=4)
    assert set(predictor.adapters) == set(IN_CHANNELS) and predictor.input_names == tuple(IN_CHANNELS)
    grouped = [m for m in predictor.body if isinstance(m, torch.nn.Conv2d)]
    assert len(grouped) == 3 and all(m.groups == 4 and m.kernel_size == (3, 3) for m in grouped)
    for name, channels in IN_CHANNELS.items():
        out = predictor(name, torch.randn(2, channels, 10, 9))
        assert out.shape == (2, 1, 10, 9)
        assert ((out > 0) & (out < 1)).all()


def test_starts_near_the_prior_probability():
    predictor = ImportancePredictor({"bev": 8}, hidden_channels=8, groups=2, prior_prob=0.1).eval()
    out = predictor("bev", torch.randn(1, 8, 12, 12))
    assert (out - 0.1).abs().max() < 0.05


def test_gradients_reach_the_predictor_but_not_the_input_features():
    predictor = ImportancePredictor({"bev": 8}, hidden_channels=8, groups=2)
    features = torch.randn(2, 8, 6, 6, requires_grad=True)
    importance_loss(predictor("bev", features * 2), torch.rand(2, 1, 6, 6)).backward()
    assert features.grad is None
    assert all(p.grad is not None for p in predictor.parameters())


def test_fits_a_centre_heatmap_target_in_a_few_steps():
    torch.manual_seed(0)
    grid = BevGrid(x_min=0.0, y_min=-6.4, cell_x=0.4, cell_y=0.4, height=32, width=32)
    boxes = [
        torch.tensor([[3.0, -2.0, -1.0, 4.0, 1.8, 1.5, 0.0], [9.0, 3.0, -1.0, 0.8, 0.7, 1.7, 0.0]]),
        torch.tensor([[6.2, 0.1, -1.0, 4.2, 1.9, 1.5, 1.0]]),
    ]
    target = centre_heatmap(boxes, grid)
    # features like pooled voxel features: present (with random values) only around the objects
    footprint = (target > 0).float()
    features = torch.cat([footprint, torch.randn(2, 7, 32, 32) * footprint], dim=1)
    predictor = ImportancePredictor({"bev": 8})
    optimizer = torch.optim.Adam(predictor.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        loss = importance_loss(predictor("bev", features), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100


def test_importance_loss_is_the_mean_squared_error():
    pred, target = torch.rand(2, 1, 4, 5), torch.rand(2, 1, 4, 5)
    torch.testing.assert_close(importance_loss(pred, target), ((pred - target) ** 2).mean())
    with pytest.raises(ValueError, match=r"prediction \(2, 1, 4, 5\) and target \(2, 1, 4, 4\) differ"):
        importance_loss(pred, torch.rand(2, 1, 4, 4))


def test_built_from_the_registry_without_touching_the_config():
    config = dict(
        type="ImportancePredictor",
        in_channels=dict(IN_CHANNELS),
        hidden_channels=8,
        groups=2,
        norm_cfg=dict(type="BN2d", eps=1e-3, momentum=0.01),
    )
    snapshot = copy.deepcopy(config)
    predictor = MODELS.build(config)
    assert config == snapshot
    assert isinstance(predictor, ImportancePredictor)


def test_bad_inputs_fail_loudly():
    predictor = ImportancePredictor(IN_CHANNELS, hidden_channels=8, groups=2)
    with pytest.raises(ValueError, match=r"no input named 'encoder_layer1'; known inputs: \('encoder_layer2'"):
        predictor("encoder_layer1", torch.randn(1, 16, 4, 4))
    with pytest.raises(ValueError, match=r"input 'bev' must be \[B, 128, H, W\], got shape \(1, 64, 4, 4\)"):
        predictor("bev", torch.randn(1, 64, 4, 4))
    with pytest.raises(ValueError, match="groups=3 must divide hidden_channels=8"):
        ImportancePredictor(IN_CHANNELS, hidden_channels=8, groups=3)
    with pytest.raises(ValueError, match="without '.'"):
        ImportancePredictor({"backbone.0": 8})


def far_from_identity(predictor: ImportancePredictor) -> ImportancePredictor:
    """``predictor`` with BatchNorm statistics and affine parameters far from the identity (seeded)."""
    torch.manual_seed(0)
    for norm in predictor.modules():
        if isinstance(norm, torch.nn.BatchNorm2d):
            norm.running_mean.uniform_(-1, 1)
            norm.running_var.uniform_(0.5, 2)
            norm.weight.data.uniform_(0.5, 1.5)
            norm.bias.data.uniform_(-1, 1)
    return predictor


def test_eval_runs_each_batchnorm_as_a_multiply_add_without_changing_the_output():
    predictor = far_from_identity(ImportancePredictor({"bev": 8}, hidden_channels=8, groups=2).double().eval())
    features = torch.randn(2, 8, 9, 7, dtype=torch.float64)
    unfolded = predictor.out_conv(predictor.body(predictor.adapters["bev"](features))).sigmoid()  # modules in turn
    torch.testing.assert_close(predictor("bev", features), unfolded, rtol=1e-12, atol=1e-12)
    predictor.body[1].running_var.mul_(4)  # computed per call: new statistics take effect at once
    unfolded = predictor.out_conv(predictor.body(predictor.adapters["bev"](features))).sigmoid()
    torch.testing.assert_close(predictor("bev", features), unfolded, rtol=1e-12, atol=1e-12)


def _spy_conv_relu(calls: list, conv_relu):
    """``conv_relu`` (a ``torch.cudnn_convolution_relu``) that records, per call, whether its input is channels-last
    and whether the weight is contiguous in the input's layout."""

    def spy(x, weight, bias, stride, padding, dilation, groups):
        channels_last = x.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if channels_last else torch.contiguous_format
        calls.append((channels_last, weight.is_contiguous(memory_format=layout)))
        return conv_relu(x, weight, bias, stride, padding, dilation, groups)

    return spy


def _cpu_conv_relu(x, weight, bias, stride, padding, dilation, groups):
    """What ``torch.cudnn_convolution_relu`` computes (it is CUDA only), on the CPU."""
    return F.relu(F.conv2d(x, weight, bias, stride, padding, dilation, groups))


def _counted_forward(predictor: ImportancePredictor, inputs: tuple, dense_convs: str) -> tuple[torch.Tensor, dict]:
    with torch.no_grad(), FlopCounter(predictor, dense_convs) as counter:
        out = predictor(*inputs)
    return out, dict(counter.by_layer)


@pytest.mark.parametrize(
    ("input_kind", "fused_calls"),
    [("dense", 4), ("pooled_sites", 4), ("adapted_sites", 3)],  # adapted sites: the adapter ran on the sites
)
def test_fused_eval_blocks_give_the_unfused_output_and_flops(monkeypatch, input_kind, fused_calls):
    predictor = far_from_identity(ImportancePredictor({"s": 6}, hidden_channels=8, groups=2).double().eval())
    if input_kind == "dense":
        inputs = ("s", torch.randn(2, 6, 9, 7, dtype=torch.float64))  # NCHW
    else:  # pooled to a channels-last grid (more sites than the 40 cells), or the adapter on the 30 sites
        x = random_sparse((3, 16, 20), batch_size=2, num_sites=300 if input_kind == "pooled_sites" else 30, channels=6,
                          seed=3)  # fmt: skip
        inputs = ("s", x.replace_feature(x.features.double()), (4, 5))
    unfused = {mode: _counted_forward(predictor, inputs, mode) for mode in ("dense", "nonzero_inputs")}
    # force the fused path on the CPU: cuDNN's conv + bias + ReLU replaced by its CPU equivalent
    calls = []
    monkeypatch.setattr(importance_predictor, "_cudnn_conv_relu_runs_on", lambda x: True)
    monkeypatch.setattr(torch, "cudnn_convolution_relu", _spy_conv_relu(calls, _cpu_conv_relu), raising=False)
    for mode, (expected, expected_flops) in unfused.items():
        calls.clear()
        out, flops = _counted_forward(predictor, inputs, mode)
        assert len(calls) == fused_calls  # each (conv, BatchNorm, ReLU) block as one call
        assert all(matching for _, matching in calls)  # the folded weight in the input's layout
        assert all(channels_last == (input_kind != "dense") for channels_last, _ in calls)  # pooled: channels-last
        torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
        # the fused convs still run as calls of their modules: FlopCounter counts each once, as without fusion
        assert flops == expected_flops and flops["body.0"] > 0 and flops["body.6"] > 0
    predictor.body[1].running_var.mul_(4)  # folded per call: new statistics take effect at once
    with torch.no_grad():
        fused = predictor(*inputs)
    monkeypatch.undo()
    with torch.no_grad():
        torch.testing.assert_close(fused, predictor(*inputs), rtol=1e-12, atol=1e-12)


def test_blocks_run_unfused_in_training_with_autograd_and_on_the_cpu(monkeypatch):
    predictor = ImportancePredictor({"bev": 8}, hidden_channels=8, groups=2)
    features = torch.randn(2, 8, 6, 6)
    assert not importance_predictor._cudnn_conv_relu_runs_on(features)
    calls = []
    monkeypatch.setattr(torch, "cudnn_convolution_relu", _spy_conv_relu(calls, _cpu_conv_relu), raising=False)
    predictor.eval()("bev", features)  # on the CPU
    monkeypatch.setattr(importance_predictor, "_cudnn_conv_relu_runs_on", lambda x: True)
    predictor.train()("bev", features)  # training: batch statistics
    predictor.eval()("bev", features).sum().backward()  # eval with autograd: the cuDNN op has no backward
    assert calls == [] and predictor.body[0].weight.grad is not None
    with torch.no_grad():
        predictor("bev", features)
    assert len(calls) == 4


@pytest.mark.gpu
@pytest.mark.parametrize("sparse", [False, True])
def test_cuda_eval_runs_each_block_as_one_cudnn_call(monkeypatch, sparse):
    cpu = far_from_identity(ImportancePredictor({"s": 16}, hidden_channels=32, groups=4)).eval()
    predictor = copy.deepcopy(cpu).cuda()
    if sparse:  # more sites than cells: pooled to a channels-last grid, the adapter fused too
        x = random_sparse((4, 64, 48), batch_size=2, num_sites=6000, channels=16, seed=4)
        grid = (32, 24)
        gpu_inputs = (SparseTensor(x.features.cuda(), x.indices.cuda(), x.spatial_shape, x.batch_size), grid)
        inputs = (x.replace_feature(x.features.double()), grid)
    else:
        features = torch.randn(2, 16, 40, 36)
        inputs, gpu_inputs = (features.double(),), (features.cuda(),)
    calls = []
    monkeypatch.setattr(torch, "cudnn_convolution_relu", _spy_conv_relu(calls, torch.cudnn_convolution_relu))
    allow_tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        out, flops = _counted_forward(predictor, ("s", *gpu_inputs), "dense")
    finally:
        torch.backends.cudnn.allow_tf32 = allow_tf32
    assert len(calls) == 4 and all(matching for _, matching in calls)
    assert all(channels_last == sparse for channels_last, _ in calls)
    expected, expected_flops = _counted_forward(cpu.double(), ("s", *inputs), "dense")  # unfused, float64
    torch.testing.assert_close(out.double().cpu(), expected, rtol=1e-4, atol=1e-5)
    assert flops == expected_flops


@pytest.mark.parametrize(
    ("spatial_shape", "num_sites", "on_sites"),
    [((3, 16, 20), 30, True), ((4, 5), 12, True), ((3, 16, 20), 300, False)],  # 2 x 4 x 5 = 40 grid cells
)
def test_sites_give_the_importance_of_their_pooled_grid(spatial_shape, num_sites, on_sites):
    predictor = far_from_identity(ImportancePredictor({"s": 6}, hidden_channels=8, groups=2).double())
    x = random_sparse(spatial_shape, batch_size=2, num_sites=num_sites, channels=6, seed=3)
    x = x.replace_feature(x.features.double())
    grid = (4, 5)
    for training in (False, True):  # eval: the adapter on the sites when they are fewer than the cells
        predictor.train(training)
        expected = predictor("s", pool_to_grid(x, grid))
        torch.testing.assert_close(predictor("s", x, grid), expected, rtol=1e-12, atol=1e-12)
        y = padded(x, 7)  # padding rows of padded execution are left out; cells computed once by the caller
        torch.testing.assert_close(predictor("s", y, grid, site_cells(y, grid)), expected, rtol=1e-12, atol=1e-12)
    predictor.eval()
    assert predictor._adapts_sites("s", x, grid) == on_sites
    with FlopCounter(predictor) as counter:  # the adapter is counted on the rows it ran on
        predictor("s", x, grid)
    rows = num_sites if on_sites else 2 * 4 * 5
    assert counter.by_layer["adapters.s.0"] == 2 * rows * 6 * 8
    assert counter.by_layer["body.0"] == 2 * 40 * 9 * 8 * 8 // 2


def test_sites_need_the_grid_shape_and_the_input_channels():
    predictor = ImportancePredictor({"s": 6}, hidden_channels=8, groups=2).eval()
    x = random_sparse((4, 5), batch_size=1, num_sites=5, channels=6)
    with pytest.raises(ValueError, match=r"needs grid_shape=\(H, W\)"):
        predictor("s", x)
    with pytest.raises(ValueError, match="input 's' must have 6 channels, got a SparseTensor with 3"):
        predictor("s", random_sparse((4, 5), batch_size=1, num_sites=5, channels=3), (4, 5))


def _site_reference(encoder: torch.nn.Module, x, grid: tuple[int, int]) -> torch.Tensor:
    """Mean then max of the encoded sites of each cell, one cell at a time (zero where a cell has no site)."""
    encoded = encoder(x.features)
    cells = site_cells(x, grid)
    channels = encoded.shape[1]
    reference = torch.zeros(x.batch_size * grid[0] * grid[1], 2 * channels, dtype=encoded.dtype)
    for cell in cells.unique().tolist():
        rows = encoded[cells == cell]
        reference[cell] = torch.cat([rows.mean(dim=0), rows.max(dim=0).values])
    return reference.view(x.batch_size, *grid, 2 * channels).permute(0, 3, 1, 2)


@pytest.mark.parametrize("training", [False, True])
def test_a_site_encoder_pools_the_encoded_sites_by_mean_and_max(training):
    predictor = ImportancePredictor({"input": 4, "bev": 6}, hidden_channels=8, groups=2, site_encoder_inputs=("input",),
                                    site_encoder_channels=5)  # fmt: skip
    predictor = far_from_identity(predictor.double()).train(training)
    assert predictor.adapters["input"][0].in_channels == 10 and predictor.adapters["bev"][0].in_channels == 6
    assert list(predictor.site_encoders) == ["input"]
    x = random_sparse((3, 16, 20), batch_size=2, num_sites=60, channels=4, seed=5)
    x = x.replace_feature(x.features.double())
    grid = (4, 5)
    encoder = predictor.site_encoders["input"]
    pooled = predictor._encoded_sites("input", x, grid, None)
    torch.testing.assert_close(pooled, _site_reference(encoder, x, grid), rtol=1e-12, atol=1e-12)
    assert not _site_reference(encoder, x, grid)[:, 5:].eq(0).all()  # the maxima hold values (after the ReLU)
    # the rest of the predictor reads the pooled encoding as a dense input would be read
    dense_path = ImportancePredictor({"input": 10, "bev": 6}, hidden_channels=8, groups=2).double().train(training)
    dense_path.load_state_dict({k: v for k, v in predictor.state_dict().items() if not k.startswith("site_")})
    expected = dense_path("input", _site_reference(encoder, x, grid))
    torch.testing.assert_close(predictor("input", x, grid), expected, rtol=1e-12, atol=1e-12)
    if not training:  # padded execution (inference): padding rows are left out
        y = padded(x, 7)
        torch.testing.assert_close(predictor("input", y, grid, site_cells(y, grid)), expected, rtol=1e-12,
                                   atol=1e-12)  # fmt: skip
    assert not predictor._adapts_sites("input", x, grid)


def test_a_site_encoder_learns_and_its_errors_name_the_inputs():
    predictor = ImportancePredictor({"input": 4}, hidden_channels=8, groups=2, site_encoder_inputs=("input",))
    x = random_sparse((3, 16, 20), batch_size=2, num_sites=60, channels=4, seed=6)
    predictor("input", x, (4, 5)).sum().backward()
    assert predictor.site_encoders["input"][0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"site_encoder_inputs \['stem'\] are not inputs of the predictor; its inputs: "
                                         r"\['input'\]"):
        ImportancePredictor({"input": 4}, site_encoder_inputs=("stem",))
    with pytest.raises(ValueError, match="input 'input' encodes its sites .* give it a SparseTensor, not a dense grid"):
        predictor("input", torch.zeros(2, 4, 4, 5))
    counter_model = predictor.eval()
    with FlopCounter(counter_model) as counter:  # the encoder's linear layer is counted on the sites
        counter_model("input", x, (4, 5))
    assert counter.by_layer["site_encoders.input.0"] == 2 * 60 * 4 * 32


def test_the_site_encoder_norm_is_configurable_and_a_syncbn_checkpoint_loads_into_bn1d():
    settings = dict(hidden_channels=8, groups=2, site_encoder_inputs=("input",))
    synced = ImportancePredictor({"input": 4}, **settings, site_norm_cfg=dict(type="SyncBN", eps=1e-3, momentum=0.01))
    plain = ImportancePredictor({"input": 4}, **settings)
    assert isinstance(synced.site_encoders["input"][1], torch.nn.SyncBatchNorm)
    assert type(plain.site_encoders["input"][1]) is torch.nn.BatchNorm1d
    norm = synced.site_encoders["input"][1]
    torch.manual_seed(1)
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 1.5)
    plain.load_state_dict(synced.state_dict())  # the same keys: checkpoints move between the two
    x = random_sparse((3, 16, 20), batch_size=2, num_sites=60, channels=4, seed=7)
    with torch.no_grad():  # eval folds either norm into the linear layer: the same map
        torch.testing.assert_close(synced.eval()("input", x, (4, 5)), plain.eval()("input", x, (4, 5)))
        assert synced._folds_site_encoder("input")
