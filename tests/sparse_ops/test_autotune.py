"""The autotuner: groups by shared kernel map, picks the fastest candidate, caches the choice on disk.

Timings come from an injected fake timer (a cost per configuration), so the tests do not depend on the
speed of this machine; Triton candidates run on the GPU where there is one, else in Triton's CPU
interpreter (tests/conftest.py) on tiny inputs. The real timer runs end to end on the CPU
(gather-scatter, the only CPU candidate) and, where there is one, on the GPU (every dataflow).

What tune() times depends on the untuned default (gather-scatter on CPU, implicit GEMM on CUDA): it is
timed besides the candidates for the speed-up. The ``untuned`` fixture runs the tests that count timings
with either default on any device, so the CUDA case is checked on a CPU machine too.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest
import torch

import sparse_ops
from sparse_ops import SparseTensor
from sparse_ops.autotune import (
    CACHE_ENV,
    MedianTimer,
    candidate_configs,
    default_cache_path,
    group_by_kernel_map,
    record_layer_calls,
    search,
    tuner,
)
from sparse_ops.conv import ConvConfig
from sparse_ops.conv.config import implicit_gemm_default
from sparse_ops.conv.functional import default_config
from sparse_ops.nn import SparseConv3d, SparseConvolution, SparseInverseConv3d, SparseSequential, SubMConv3d
from sparse_ops.utils import triton_available
from tests.sparse_ops.cases import random_sparse_tensor

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GS = ConvConfig("gather_scatter")
IG = ConvConfig("implicit_gemm", 16, 16, 16, wgrad_row_blocks=2)
IGS = ConvConfig("implicit_gemm_sorted", 16, 16, 16)
# what an untuned layer of the network below (<= 8 channels) runs here (gather-scatter on CPU, implicit GEMM with
# 16-wide tiles on CUDA); tune() always times it
IMPLICIT_GEMM_DEFAULT = implicit_gemm_default(8, 8)
DEFAULT = default_config(torch.device(DEVICE), torch.float32, 8, 8)
# every configuration the fake timers below price: the three candidates and both devices' defaults
PRICED = [GS, IG, IGS, IMPLICIT_GEMM_DEFAULT]
# layer names of the network below, grouped by the kernel map they share
GROUPS = [("0", "2"), ("3",), ("4",), ("5",)]


def _with_default(candidates: list[ConvConfig], default: ConvConfig) -> list[ConvConfig]:
    """``candidates`` with the untuned ``default`` among them (a candidate that may win, timed once)."""
    return candidates + ([] if default in candidates else [default])


CANDIDATES = _with_default([GS, IG, IGS], DEFAULT)


def _expected_trials(candidates: list[ConvConfig], default: ConvConfig, groups=GROUPS) -> list:
    """``(group, config)`` for what tune() must time when no choice is cached: each distinct candidate
    once per group, and the untuned default besides (its time is the report's baseline)."""
    return sorted(((group, config) for group in groups for config in {*candidates, default}), key=str)


@pytest.fixture(params=[GS, IMPLICIT_GEMM_DEFAULT], ids=["gather_scatter_default", "implicit_gemm_default"])
def untuned(request, monkeypatch) -> ConvConfig:
    """The configuration tune() takes an untuned layer to run: gather-scatter (the CPU default) or
    implicit GEMM (the CUDA default), whatever the device. Only the tuner's view is patched: the model
    itself still runs the device's default (the fake timers never run a trial)."""
    monkeypatch.setattr(tuner, "default_config", lambda device, dtype, in_channels, out_channels: request.param)
    return request.param


def _network(device: str = DEVICE) -> SparseSequential:
    """Two SubM layers on one map (``subm1``), a strided conv, a SubM layer, the strided conv's inverse."""
    torch.manual_seed(0)
    network = SparseSequential(
        SubMConv3d(2, 4, 3, indice_key="subm1"),
        torch.nn.BatchNorm1d(4),
        SubMConv3d(4, 4, 3, indice_key="subm1"),
        SparseConv3d(4, 8, 3, stride=2, padding=1, indice_key="down1"),
        SubMConv3d(8, 8, 3, indice_key="subm2"),
        SparseInverseConv3d(8, 4, 3, indice_key="down1"),
    )
    return network.to(device)


def _input(spatial_shape=(4, 6, 6), dtype: torch.dtype = torch.float32, device: str = DEVICE) -> SparseTensor:
    """About 40 sites (30 % of the grid), two channels."""
    x = random_sparse_tensor(spatial_shape, 1, 2, 0.3, seed=0, dtype=dtype)
    return SparseTensor(x.features.to(device), x.indices.to(device), x.spatial_shape, x.batch_size)


def _configs(network) -> dict[str, ConvConfig | None]:
    return {name: m.config for name, m in network.named_modules() if isinstance(m, SparseConvolution)}


class FakeTimer:
    """Milliseconds from ``cost(layer names, config)`` instead of a clock; records every trial and, with
    ``run=True``, runs it once (proving the trial computes)."""

    def __init__(self, cost=None, run: bool = False) -> None:
        self.cost = cost or (lambda names, config: 1.0 + PRICED.index(config))
        self.run = run
        self.trials: list[tuple[tuple[str, ...], ConvConfig]] = []

    def __call__(self, trial) -> float:
        names = tuple(trial.group.names)
        self.trials.append((names, trial.config))
        if self.run:
            trial.run()
        return self.cost(names, trial.config)


def _prefer_sorted_for_subm(names, config):
    """Sorted implicit GEMM fastest on the SubM groups, plain implicit GEMM elsewhere, gather-scatter last."""
    order = [IGS, IG, GS] if names in (("0", "2"), ("4",)) else [IG, IGS, GS]
    order += [c for c in PRICED if c not in order]
    return 1.0 + order.index(config)


def test_layers_sharing_a_kernel_map_form_one_group():
    network, x = _network(), _input()
    groups = group_by_kernel_map(record_layer_calls(network, lambda: network(x)))
    assert [tuple(group.names) for group in groups] == GROUPS
    assert groups[0].signature() == "3d subm k3x3x3 s1x1x1 d1x1x1 2>4,4>4"
    assert groups[3].signature().startswith("3d inverse k3x3x3")
    assert groups[0].calls[1].features.shape == (x.features.shape[0], 4)  # the second layer's own input


def test_fastest_candidate_is_set_on_every_layer_of_its_group(tmp_path, untuned):
    network, x = _network(), _input()
    timer = FakeTimer(_prefer_sorted_for_subm)
    candidates = _with_default([GS, IG, IGS], untuned)
    report = sparse_ops.tune(network, (x,), candidates=candidates, search="exhaustive", cache=tmp_path / "c.json",
                             timer=timer, progress=False)  # fmt: skip
    assert _configs(network) == {"0": IGS, "2": IGS, "3": IG, "4": IGS, "5": IG}
    assert [group.layers for group in report.groups] == GROUPS
    assert sorted(timer.trials, key=str) == _expected_trials(candidates, untuned)
    assert report.num_timed == len(GROUPS) * len(candidates)  # the default is one of the candidates: timed once
    first = report.groups[0]
    default_ms = _prefer_sorted_for_subm(("0", "2"), untuned)
    assert (first.config, first.time_ms, first.default_config, first.default_ms) == (IGS, 1.0, untuned, default_ms)
    assert first.speedup == pytest.approx(default_ms)
    table = report.format()
    assert "| 0, 2 | 3d subm k3x3x3 s1x1x1 d1x1x1 2>4,4>4 |" in table and "implicit_gemm_sorted 16x16x16" in table


def test_tuning_leaves_the_output_unchanged(tmp_path):
    network, x = _network(), _input()
    network.eval()
    with torch.no_grad():
        before = network(x).features
    sparse_ops.tune(network, (x,), candidates=CANDIDATES, search="exhaustive", cache=False,
                    timer=FakeTimer(_prefer_sorted_for_subm), progress=False)  # fmt: skip
    assert set(_configs(network).values()) == {IG, IGS}
    with torch.no_grad():
        after = network(x).features
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_tuning_restores_train_flags_and_batch_norm_statistics():
    network, x = _network(), _input()
    network.train()
    state = {name: value.clone() for name, value in network.state_dict().items()}
    sparse_ops.tune(network, (x,), mode="training", candidates=[GS], cache=False, timer=FakeTimer(), progress=False)
    assert all(module.training for module in network.modules())
    for name, value in network.state_dict().items():
        assert torch.equal(value, state[name]), name


def test_second_run_reads_every_choice_from_the_cache(tmp_path):
    path = tmp_path / "autotune.json"
    network, x = _network(), _input()
    kwargs = dict(candidates=CANDIDATES, search="exhaustive", cache=path, progress=False)
    first = sparse_ops.tune(network, (x,), timer=FakeTimer(_prefer_sorted_for_subm), **kwargs)
    chosen = _configs(network)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["autotune.json"]  # no temporary file left behind
    assert len(json.loads(path.read_text())["entries"]) == len(GROUPS)

    fresh = _network()  # same architecture, untuned
    second_timer = FakeTimer()
    second = sparse_ops.tune(fresh, (_input(),), timer=second_timer, **kwargs)
    assert second.num_timed == 0 and second_timer.trials == []
    assert second.cached_layers == ["0", "2", "3", "4", "5"] and first.cached_layers == []
    assert _configs(fresh) == chosen
    assert [(g.time_ms, g.default_ms) for g in second.groups] == [(g.time_ms, g.default_ms) for g in first.groups]
    assert "0 configurations timed, 4 groups from the cache" in second.format()


@pytest.mark.parametrize("change", ["dtype", "size", "mode"])
def test_other_dtype_size_bucket_or_mode_misses_the_cache(tmp_path, change, untuned):
    path = tmp_path / "autotune.json"
    sparse_ops.tune(_network(), (_input(),), candidates=[GS], cache=path, timer=FakeTimer(), progress=False)
    network, x, mode = _network(), _input(), "inference"
    if change == "dtype":
        network, x = network.double(), _input(dtype=torch.float64)
    elif change == "size":
        x = _input((8, 12, 12))  # 8x the sites: every map lands in another size bucket
    else:
        mode = "training"
    timer = FakeTimer()
    report = sparse_ops.tune(network, (x,), mode=mode, candidates=[GS], cache=path, timer=timer, progress=False)
    assert report.cached_layers == [] and sorted(timer.trials, key=str) == _expected_trials([GS], untuned)
    assert report.num_timed == len(timer.trials)
    assert len(json.loads(path.read_text())["entries"]) == 2 * len(GROUPS)  # both runs' entries kept


def test_corrupt_cache_file_warns_and_is_rebuilt(tmp_path, untuned):
    path = tmp_path / "autotune.json"
    path.write_text('{"version": 1, "entries": {"truncated')
    network, x = _network(), _input()
    kwargs = dict(candidates=[GS], cache=path, progress=False)
    timer = FakeTimer()
    with pytest.warns(UserWarning, match="unreadable"):
        report = sparse_ops.tune(network, (x,), timer=timer, **kwargs)
    assert sorted(timer.trials, key=str) == _expected_trials([GS], untuned)
    assert report.num_timed == len(timer.trials)
    assert len(json.loads(path.read_text())["entries"]) == len(GROUPS)
    assert sparse_ops.tune(network, (x,), timer=FakeTimer(), **kwargs).num_timed == 0


def test_unusable_cache_entry_is_retimed(tmp_path, untuned):
    path = tmp_path / "autotune.json"
    network, x = _network(), _input()
    kwargs = dict(candidates=[GS], cache=path, progress=False)
    sparse_ops.tune(network, (x,), timer=FakeTimer(), **kwargs)
    payload = json.loads(path.read_text())
    key = next(iter(payload["entries"]))
    payload["entries"][key]["config"]["dataflow"] = "no_such_dataflow"
    path.write_text(json.dumps(payload))
    timer = FakeTimer()
    with pytest.warns(UserWarning, match="unusable entry"):
        report = sparse_ops.tune(network, (x,), timer=timer, **kwargs)
    (retimed,) = {names for names, _ in timer.trials}  # only the group whose entry was spoilt
    assert sorted(timer.trials, key=str) == _expected_trials([GS], untuned, groups=[retimed])
    assert report.num_timed == len(timer.trials)
    assert report.cached_layers == [name for group in GROUPS if group != retimed for name in group]


@pytest.mark.parametrize("mode, gemms, weight_grads", [("inference", 5, 0), ("training", 10, 5)])
def test_training_mode_times_the_backward_kernels(monkeypatch, mode, gemms, weight_grads):
    from sparse_ops.conv import implicit_gemm

    calls = {"gemm": 0, "weight_grad": 0}

    def counting(name, fn):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(implicit_gemm, "_gather_gemm", counting("gemm", implicit_gemm._gather_gemm))
    monkeypatch.setattr(implicit_gemm, "_weight_grad", counting("weight_grad", implicit_gemm._weight_grad))
    network, x = _network(), _input()
    fake = FakeTimer(run=True)
    launched = Counter()  # kernel calls while the trials of IG ran (not the recording pass, not the default's)

    def timer(trial) -> float:
        before = dict(calls)
        ms = fake(trial)
        if trial.config == IG:
            launched.update({name: calls[name] - before[name] for name in calls})
        return ms

    sparse_ops.tune(network, (x,), mode=mode, candidates=[IG], cache=False, timer=timer, progress=False)
    assert [config for _, config in fake.trials].count(IG) == len(GROUPS)
    # per layer: the forward GEMM; in training also the input-gradient GEMM and the weight gradient
    assert dict(launched) == {"gemm": gemms, "weight_grad": weight_grads}


def test_failing_candidates_are_skipped_and_all_failing_keeps_the_configs(untuned):
    def broken_sorted(names, config):
        if config == IGS:
            raise RuntimeError("out of shared memory")  # as a Triton tile that does not fit would
        return {GS: 2.0, IG: 3.0, IMPLICIT_GEMM_DEFAULT: 4.0}[config]

    network, x = _network(), _input()
    candidates = _with_default([GS, IG, IGS], untuned)
    timer = FakeTimer(broken_sorted)
    report = sparse_ops.tune(network, (x,), candidates=candidates, search="exhaustive", cache=False, timer=timer,
                             progress=False)  # fmt: skip
    assert set(_configs(network).values()) == {GS}
    assert sorted(timer.trials, key=str) == _expected_trials(candidates, untuned)
    assert report.num_timed == len(GROUPS) * len(candidates)
    assert [group.num_failed for group in report.groups] == [1] * len(GROUPS) and "(1 failed)" in report.format()

    def broken(names, config):
        raise RuntimeError("does not compile")

    network, timer = _network(), FakeTimer(broken)
    with pytest.warns(UserWarning, match="every candidate failed"):
        report = sparse_ops.tune(network, (x,), candidates=[IG], cache=False, timer=timer, progress=False)
    assert set(_configs(network).values()) == {None}
    assert sorted(timer.trials, key=str) == _expected_trials([IG], untuned)
    assert [group.num_failed for group in report.groups] == [group.num_timed for group in report.groups]
    assert report.groups[0].config is None and report.groups[0].speedup is None


@pytest.mark.parametrize("default_ms", [20.0, 5.0], ids=["default_slower", "default_faster"])
def test_default_cuda_candidates_are_descended_and_the_default_wins_only_when_faster(monkeypatch, default_ms):
    """tune()'s own CUDA candidate set (``candidate_configs`` for device cuda: only the type is read) and
    a default priced by a fake timer. The default here has 32-wide tiles, off the grid of these narrow layers
    (a default on the grid is also the descent's start): descent must still sweep the grid's tiles, time each
    configuration once, and set the default only where it beats the grid's best."""
    if not triton_available():
        pytest.skip("without Triton the CUDA candidate set is gather-scatter only")
    cuda = torch.device("cuda")
    off_grid = ConvConfig("implicit_gemm", 64, 32, 32)
    monkeypatch.setattr(tuner, "candidate_configs", lambda *args: candidate_configs(*args[:2], cuda, *args[3:]))
    monkeypatch.setattr(tuner, "default_config", lambda device, dtype, in_channels, out_channels: off_grid)
    fastest = ConvConfig("implicit_gemm", 128, 16, 16, num_warps=2, num_stages=3)

    def cost(names, config):  # one millisecond per field off the fastest grid point
        if config == off_grid:
            return default_ms
        if config.dataflow == "gather_scatter":
            return 50.0
        return 10.0 + sum(getattr(config, f.name) != getattr(fastest, f.name) for f in dataclasses.fields(config))

    network, x, timer = _network(), _input(), FakeTimer(cost)
    report = sparse_ops.tune(network, (x,), cache=False, timer=timer, progress=False)
    expected = fastest if default_ms > 10.0 else off_grid
    assert set(_configs(network).values()) == {expected}
    assert all((g.time_ms, g.default_ms) == (min(default_ms, 10.0), default_ms) for g in report.groups)
    assert len(set(timer.trials)) == len(timer.trials) == report.num_timed  # each configuration timed once
    assert {names for names, config in timer.trials if config == off_grid} == set(GROUPS)
    grid = candidate_configs(8, 8, cuda, torch.float32)
    assert all(g.num_timed <= 12 < len(grid) for g in report.groups)  # a descent, not the whole grid


def test_real_timer_end_to_end_on_cpu(tmp_path):
    path = tmp_path / "autotune.json"
    network, x = _network("cpu"), _input(device="cpu")
    report = sparse_ops.tune(network, (x,), cache=path, warmup=1, repeats=2, progress=False)
    assert set(_configs(network).values()) == {GS}  # the only sound CPU candidate
    assert report.num_timed == len(GROUPS)
    assert all(group.time_ms > 0 and group.default_ms == group.time_ms for group in report.groups)
    assert report.device.startswith("cpu") and report.dtype == "float32"
    again = sparse_ops.tune(network, lambda: network(x), cache=path, warmup=1, repeats=2, progress=False)
    assert again.num_timed == 0 and len(again.cached_layers) == 5


@pytest.mark.gpu
def test_real_timer_on_cuda_tunes_every_group_and_keeps_the_output(tmp_path):
    """The full GPU path: default candidates, Triton compilation in the warm-up, CUDA-graph timing."""
    torch.backends.cuda.matmul.allow_tf32 = False
    path = tmp_path / "autotune.json"
    network, x = _network("cuda").eval(), _input(device="cuda")
    with torch.no_grad():
        before = network(x).features
    report = sparse_ops.tune(network, (x,), cache=path, warmup=1, repeats=3, progress=False)
    assert all(group.config is not None and group.time_ms > 0 for group in report.groups), report.format()
    assert sum(group.num_failed for group in report.groups) == 0, report.format()
    assert report.num_timed >= 3 * len(GROUPS)  # at least gather-scatter and both implicit-GEMM variants
    with torch.no_grad():
        after = network(x).features
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)
    again = sparse_ops.tune(_network("cuda"), (x,), cache=path, warmup=1, repeats=3, progress=False)
    assert again.num_timed == 0 and [g.config for g in again.groups] == [g.config for g in report.groups]


def test_median_timer_runs_warmup_then_repeats():
    runs = []

    class Trial:
        device = torch.device("cpu")
        capturable = False

        @staticmethod
        def run():
            runs.append(1)

    assert MedianTimer(warmup=2, repeats=3)(Trial()) >= 0.0
    assert len(runs) == 5
    with pytest.raises(ValueError, match="at least 1"):
        MedianTimer(warmup=0)


def test_candidate_set_depends_on_device_dtype_and_channels():
    cuda = torch.device("cuda")  # only the device type is read: no GPU needed
    assert candidate_configs(64, 64, torch.device("cpu"), torch.float32) == [GS]
    wide = candidate_configs(64, 64, cuda, torch.float16)
    if not triton_available():
        assert wide == [GS]
        return
    assert candidate_configs(64, 64, cuda, torch.float64) == [GS]
    assert {c.dataflow for c in wide} == {"gather_scatter", "implicit_gemm", "implicit_gemm_sorted"}
    tiled = [c for c in wide if c.dataflow != "gather_scatter"]
    assert {c.block_n for c in tiled} == {32, 64} and {c.block_k for c in tiled} == {16, 32}
    assert {c.block_m for c in tiled} == {32, 64, 128} and {c.num_warps for c in tiled} == {2, 4, 8}
    assert {c.split_k for c in tiled if c.dataflow == "implicit_gemm"} == {1, 3}
    assert {c.split_k for c in tiled if c.dataflow == "implicit_gemm_sorted"} == {1}
    wider = [c for c in candidate_configs(128, 256, cuda, torch.float32) if c.dataflow != "gather_scatter"]
    assert {c.block_n for c in wider} == {64, 128}  # wide tiles read each gathered input row fewer times
    narrow = [c for c in candidate_configs(4, 16, cuda, torch.float16) if c.dataflow != "gather_scatter"]
    assert {c.block_n for c in narrow} == {16} and {c.block_k for c in narrow} == {16}
    training = candidate_configs(64, 64, cuda, torch.float16, mode="training")
    assert {c.wgrad_row_blocks for c in training if c.dataflow != "gather_scatter"} == {4, 8, 16}
    assert {c.wgrad_row_blocks for c in tiled} == {8}


def test_untuned_default_fits_its_tiles_to_the_channels():
    cuda = torch.device("cuda")  # only the device type is read: no GPU needed
    assert default_config(torch.device("cpu"), torch.float32, 64, 64) == GS
    assert default_config(cuda, torch.float64, 64, 64) == GS
    if not triton_available():
        return
    tiles = {
        (channels_in, channels_out): (config.dataflow, config.block_m, config.block_n, config.block_k)
        for channels_in, channels_out in [(4, 16), (16, 32), (64, 64), (64, 128), (128, 256)]
        for config in [default_config(cuda, torch.float16, channels_in, channels_out)]
    }
    assert tiles == {
        (4, 16): ("implicit_gemm", 64, 16, 16),  # no tile multiplies padding channels
        (16, 32): ("implicit_gemm", 64, 32, 16),
        (64, 64): ("implicit_gemm", 64, 64, 32),
        (64, 128): ("implicit_gemm", 64, 64, 32),  # capped: 64 output and 32 input channels per tile
        (128, 256): ("implicit_gemm", 64, 64, 32),
    }


def test_descent_finds_a_separable_optimum_with_few_timings():
    """Descent times each dataflow, then one tile field at a time; on a cost that adds up per field it
    reaches the exhaustive optimum with a fraction of the timings."""
    candidates = [ConvConfig("gather_scatter")] + [
        ConvConfig(flow, m, n, k, w, s)
        for flow in ("implicit_gemm", "implicit_gemm_sorted")
        for m in (32, 64, 128)
        for n in (32, 64)
        for k in (16, 32)
        for w in (2, 4, 8)
        for s in (2, 3)
    ]
    best_fields = dict(dataflow="implicit_gemm_sorted", block_m=128, block_n=64, block_k=16, num_warps=8, num_stages=3)

    def cost(config):
        if config.dataflow == "gather_scatter":
            return 50.0
        return 10.0 + sum(getattr(config, name) != value for name, value in best_fields.items())

    timed = []

    def time_of(config):
        timed.append(config)
        return cost(config)

    assert search(candidates, time_of, "descent") == ConvConfig(**best_fields)
    assert len(set(timed)) <= 12
    assert search(candidates, cost, "exhaustive") == ConvConfig(**best_fields)
    with pytest.raises(ValueError, match="search must be one of"):
        search(candidates, cost, "random")


def test_cache_location_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "mine.json"))
    assert default_cache_path() == tmp_path / "mine.json"
    monkeypatch.delenv(CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "sparse_ops" / "autotune.json"


def test_bad_arguments_raise():
    network, x = _network(), _input()
    with pytest.raises(ValueError, match="mode must be one of"):
        sparse_ops.tune(network, (x,), mode="eval")
    with pytest.raises(ValueError, match="at least one ConvConfig"):
        sparse_ops.tune(network, (x,), candidates=[])
    with pytest.raises(ValueError, match="called no SparseConvolution"):
        sparse_ops.tune(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), cache=False)
