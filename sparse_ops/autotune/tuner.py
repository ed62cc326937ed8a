"""``tune(model, inputs)``: choose and set a dataflow and tile configuration for every layer group."""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

from sparse_ops.autotune.cache import CacheEntry, TuningCache, default_cache_path, device_name, software_versions
from sparse_ops.autotune.candidates import SEARCHES, candidate_configs
from sparse_ops.autotune.candidates import search as search_candidates
from sparse_ops.autotune.record import LayerGroup, group_by_kernel_map, record_layer_calls
from sparse_ops.autotune.report import GroupResult, TuningReport
from sparse_ops.autotune.timing import MODES, MedianTimer, Timer, make_trial
from sparse_ops.conv.config import ConvConfig
from sparse_ops.conv.functional import default_config

logger = logging.getLogger(__name__)


def tune(
    model: nn.Module,
    inputs: object,
    *,
    mode: str = "inference",
    candidates: Sequence[ConvConfig] | None = None,
    search: str = "descent",
    cache: bool | str | os.PathLike = True,
    timer: Timer | None = None,
    warmup: int = 2,
    repeats: int = 5,
    progress: bool = True,
) -> TuningReport:
    """Time candidate configurations per group of layers sharing a kernel map, and set the fastest.

    The model runs once on ``inputs`` (under ``no_grad``, in ``eval()`` for inference and ``train()``
    for training; its train flags and buffers, BN statistics included, are restored afterwards) to record each
    :class:`~sparse_ops.nn.SparseConvolution`'s input and kernel map. Layers that ran on one map form a
    group; each group's candidates are timed on those real inputs, all layers of the group together,
    and the fastest is set as ``module.config`` on each of them. Choices are cached on disk, keyed by
    device, software versions, mode, dtype, the group's layer signature and the map's size bucket; a
    group found in the cache is set without timing anything. Tune before capturing CUDA graphs
    (``sparse_ops.graphs.CudaGraphRunner``): a captured graph keeps the kernels it was captured with.

    Args:
        model: the network; its SparseConvolution modules are tuned.
        inputs: what to run it on: a callable taking no arguments (which calls the model), a tuple /
            list of positional arguments, a dict of keyword arguments, or a single argument.
        mode: ``inference`` times forward passes; ``training`` forward and backward (both gradient kernels).
        candidates: configurations to consider for every group; default
            :func:`~sparse_ops.autotune.candidate_configs` per group (gather-scatter only on CPU), whose
            best then competes with the untuned default, so that tuning never picks something slower
            than not tuning. The untuned default is timed for every group either way (the baseline of
            the reported speed-up); it is never chosen when not among explicit ``candidates``.
        search: ``descent`` (dataflows, then one tile field at a time: about ten timings per
            group) or ``exhaustive`` (every candidate).
        cache: True for the default file (``$SPARSE_OPS_TUNE_CACHE`` or ``~/.cache/sparse_ops/autotune.json``),
            a path for another one, False for no disk cache.
        timer: ``timer(trial) -> ms``; default :class:`~sparse_ops.autotune.MedianTimer` with ``warmup``
            and ``repeats``.
        warmup / repeats: untimed runs (the first compiles Triton kernels) and timed samples per candidate.
        progress: show a progress bar over the groups (when tqdm is installed).

    Returns:
        A :class:`TuningReport`; ``report.num_timed`` is 0 when every choice came from the cache.

    Raises:
        ValueError: for an unknown mode or search, an empty candidate list, or if running the model called
            no sparse convolution.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {search!r}")
    if candidates is not None and not candidates:
        raise ValueError("candidates must hold at least one ConvConfig (or be None for the default set)")
    groups = group_by_kernel_map(_record(model, _as_call(model, inputs), mode))
    if not groups:
        raise ValueError(f"tune(): running {type(model).__name__} called no SparseConvolution; nothing to tune")
    path = None if cache is False else default_cache_path() if cache is True else Path(cache)
    store = TuningCache(path)
    timer = MedianTimer(warmup, repeats) if timer is None else timer
    results = []
    try:
        for group in _progress(groups, enabled=progress):
            results.append(_tune_group(group, mode, candidates, search, store, timer))
    finally:  # an interrupted run keeps the groups it finished
        store.save()
    first = groups[0]
    return TuningReport(mode, device_name(first.device), _dtype_key(first), tuple(results), path)


def _as_call(model: nn.Module, inputs: object) -> Callable[[], object]:
    if callable(inputs):
        return inputs
    if isinstance(inputs, dict):
        return lambda: model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return lambda: model(*inputs)
    return lambda: model(inputs)


def _record(model: nn.Module, run: Callable[[], object], mode: str):
    """Record the layer calls with the model in the mode's train/eval state, leaving it as it was."""
    flags = {module: module.training for module in model.modules()}
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]  # BN statistics in train()
    model.train(mode == "training")
    try:
        return record_layer_calls(model, run)
    finally:
        for module, training in flags.items():
            module.training = training
        with torch.no_grad():
            for buffer, saved in buffers:
                buffer.copy_(saved)


def _progress(groups: list[LayerGroup], enabled: bool) -> Iterable[LayerGroup]:
    if not enabled:
        return groups
    try:
        from tqdm import tqdm
    except ImportError:
        return groups
    return tqdm(groups, desc="autotune", unit="group", leave=False)


def _dtype_key(group: LayerGroup) -> str:
    """The compute dtype, with ``+tf32`` where fp32 Triton dots may use TF32 (a different speed)."""
    name = str(group.dtype).removeprefix("torch.")
    tf32 = group.dtype == torch.float32 and group.device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32
    return f"{name}+tf32" if tf32 else name


def _cache_key(
    group: LayerGroup, mode: str, bucket: str, candidates: Sequence[ConvConfig], rival: ConvConfig | None, strategy: str
) -> str:
    """Everything that changes which candidate is fastest; the candidate space, with the ``rival`` that
    competes with the search's best (the untuned default, or None), enters as a digest."""
    space = hashlib.sha1(repr((strategy, list(candidates), rival)).encode()).hexdigest()[:12]
    parts = [device_name(group.device), software_versions(), mode, _dtype_key(group), group.signature(), bucket]
    return " | ".join([*parts, f"space {space}"])


def _tune_group(
    group: LayerGroup,
    mode: str,
    candidates: Sequence[ConvConfig] | None,
    strategy: str,
    store: TuningCache,
    timer: Timer,
) -> GroupResult:
    # the untuned configuration of the group's widest layer (layers sharing a map rarely differ in their tiles)
    default = default_config(group.device, group.dtype, group.in_channels, group.out_channels)
    # tune()'s own candidate set: the grid is searched, then the untuned default competes with the grid's best,
    # so tuning never picks something slower than not tuning. The fitted default lies on the grid (time_of memoises,
    # so it is timed once); a default off the grid, searched as a candidate, would be the start of its dataflow
    # with no neighbours to descend to.
    baseline = candidates is None
    if candidates is None:
        candidates = candidate_configs(group.in_channels, group.out_channels, group.device, group.dtype, mode)
    bucket = group.bucket()
    key = _cache_key(group, mode, bucket, candidates, default if baseline else None, strategy)
    described = dict(layers=tuple(group.names), signature=group.signature(), bucket=bucket)
    entry = store.get(key)
    if entry is not None:
        _apply(group, entry.config)
        return GroupResult(**described, config=entry.config, time_ms=entry.time_ms, default_config=default,
                           default_ms=entry.default_ms, cached=True, num_timed=0)  # fmt: skip

    times: dict[ConvConfig, float | None] = {}

    def time_of(config: ConvConfig) -> float | None:
        if config not in times:
            times[config] = _time_candidate(group, config, mode, timer)
        return times[config]

    best = search_candidates(candidates, time_of, strategy)
    default_ms = time_of(default)
    if baseline and default_ms is not None and (best is None or default_ms < times[best]):
        best = default
    if best is None:
        warnings.warn(
            f"autotune: every candidate failed on layers {group.names} ({group.signature()}); they keep their "
            "configuration (run with logging at DEBUG level to see why)",
            stacklevel=3,
        )
    else:
        _apply(group, best)
        store.put(key, CacheEntry(best, times[best], default_ms))
    return GroupResult(**described, config=best, time_ms=None if best is None else times[best], default_config=default,
                       default_ms=default_ms, cached=False, num_timed=len(times),
                       num_failed=sum(ms is None for ms in times.values()))  # fmt: skip


def _time_candidate(group: LayerGroup, config: ConvConfig, mode: str, timer: Timer) -> float | None:
    """Milliseconds of ``config`` on ``group``, or None if it fails (a tile that does not compile or
    does not fit the device's shared memory is skipped, not fatal)."""
    try:
        return timer(make_trial(group, config, mode))
    except Exception as error:  # whatever one candidate raises only removes that candidate
        logger.debug("autotune: %s failed on %s: %r", config, group.names, error)
        return None


def _apply(group: LayerGroup, config: ConvConfig) -> None:
    for call in group.calls:
        call.module.config = config
