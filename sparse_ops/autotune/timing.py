"""Timing one candidate configuration over one layer group, honestly on GPUs.

A :class:`Trial` runs every layer of a group once with one configuration, on a fresh copy of the
group's kernel map: what the map derives for a dataflow (neighbour tables, the bitmask sort of the
sorted dataflow, the pair lists of gather-scatter) is built once per frame in a real network and
shared by the group, so each run pays for it once, as a frame does.

:class:`MedianTimer` warms up (the first run compiles the Triton kernels), then reports the median of
synchronised samples. On CUDA a sample is a batch of back-to-back runs between two CUDA events; for
inference with a Triton dataflow the runs replay a CUDA graph of the trial, so the sample measures GPU
time rather than Python launch overhead (that is the cost under ``CudaGraphRunner``, and the launch
overhead is the same for every tile configuration). Gather-scatter syncs with the host and cannot be
captured: it is timed eagerly, launch overhead included, which is its true cost anywhere.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from sparse_ops.autotune.record import LayerGroup
from sparse_ops.conv.config import ConvConfig
from sparse_ops.conv.functional import sparse_conv

MODES = ("inference", "training")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Trial:
    """One configuration over one layer group, ready to run.

    Attributes:
        config: the configuration every layer of the group runs with.
        group: the layers.
        run: runs the group once (forward, or forward + both gradients in training).
        capturable: whether ``run`` may be captured in a CUDA graph (CUDA inference, Triton dataflow).
    """

    config: ConvConfig
    group: LayerGroup
    run: Callable[[], None]
    capturable: bool

    @property
    def device(self) -> torch.device:
        return self.group.device


# milliseconds one run of a trial takes
Timer = Callable[[Trial], float]


def make_trial(group: LayerGroup, config: ConvConfig, mode: str) -> Trial:
    """A trial of ``config`` on ``group``: ``inference`` runs the forward under ``no_grad``;
    ``training`` the forward and the gradients of features and weight (both backward kernels).

    Raises:
        ValueError: for an unknown mode.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    training = mode == "training"
    layers = []
    for call in group.calls:
        dtype = call.features.dtype
        weight = call.module.weight.detach().to(dtype).requires_grad_(training)
        bias = None if call.module.bias is None else call.module.bias.detach().to(dtype)
        features = call.features.detach().requires_grad_(training)
        # the values do not change the speed; ones leave the caller's random stream alone
        grad_out = torch.ones((group.kmap.num_out, weight.shape[0]), dtype=dtype, device=features.device)
        layers.append((features, weight, bias, grad_out))

    def run() -> None:
        kmap = dataclasses.replace(group.kmap, derived={})  # derived layouts are built once per frame
        with torch.set_grad_enabled(training):
            for features, weight, bias, grad_out in layers:
                out = sparse_conv(features, weight, bias, kmap, config)
                if training:
                    torch.autograd.grad(out, (features, weight), grad_out)

    capturable = group.device.type == "cuda" and not training and config.dataflow != "gather_scatter"
    return Trial(config, group, run, capturable)


def _graph_replay(run: Callable[[], None]) -> Callable[[], None]:
    """``run`` captured in a CUDA graph (after a warm-up on a side stream, as capture requires)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        run()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        run()
    return graph.replay


class MedianTimer:
    """Median milliseconds per run of a trial, after warm-up.

    Args:
        warmup: untimed runs first (at least one: it compiles the Triton kernels of the configuration).
        repeats: timed samples; the median is reported.
        cuda_graphs: replay capturable trials from a CUDA graph (GPU time without launch overhead).
        min_sample_ms: on CUDA, a sample repeats the run back to back until it lasts about this long,
            so that microsecond kernels are not lost in event resolution.
    """

    def __init__(self, warmup: int = 2, repeats: int = 5, cuda_graphs: bool = True, min_sample_ms: float = 1.0):
        if warmup < 1 or repeats < 1:
            raise ValueError(f"warmup and repeats must be at least 1, got warmup={warmup}, repeats={repeats}")
        self.warmup = warmup
        self.repeats = repeats
        self.cuda_graphs = cuda_graphs
        self.min_sample_ms = min_sample_ms

    def __call__(self, trial: Trial) -> float:
        for _ in range(self.warmup):
            trial.run()
        if trial.device.type != "cuda":
            return statistics.median(self._cpu_sample(trial.run) for _ in range(self.repeats))
        with torch.cuda.device(trial.device):
            run = trial.run
            if self.cuda_graphs and trial.capturable:
                try:
                    run = _graph_replay(trial.run)
                except RuntimeError as error:  # e.g. a host sync inside the run: time it eagerly instead
                    logger.warning("could not capture %s in a CUDA graph (%s); timing it eagerly", trial.config, error)
            runs_per_sample = max(1, min(100, round(self.min_sample_ms / max(self._cuda_sample(run, 1), 1e-3))))
            return statistics.median(self._cuda_sample(run, runs_per_sample) for _ in range(self.repeats))

    @staticmethod
    def _cpu_sample(run: Callable[[], None]) -> float:
        start = time.perf_counter()
        run()
        return (time.perf_counter() - start) * 1e3

    @staticmethod
    def _cuda_sample(run: Callable[[], None], runs: int) -> float:
        """Milliseconds per run over ``runs`` back-to-back runs, between two events on an idle device."""
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        for _ in range(runs):
            run()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / runs
