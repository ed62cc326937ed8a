"""Wall-clock timing that is honest on GPUs: warm-up, synchronisation, medians, peak memory."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Measurement:
    """Median and spread of repeated runs.

    ``peak_memory_mb`` (CUDA only, else None): the most memory allocated at any point of the warm-up
    and timed runs, minus what was allocated before them. It counts what the runs create and free
    (activations, kernel maps, gradients) and what they keep (a CUDA graph's memory pool, captured
    during warm-up), but not the weights and inputs that exist beforehand.
    """

    median_ms: float
    min_ms: float
    max_ms: float
    peak_memory_mb: float | None


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], object], device: torch.device, warmup: int = 2, repeats: int = 5) -> Measurement:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed (synchronised on CUDA)."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _synchronize(device)
        start = time.perf_counter()
        fn()
        _synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    peak = (torch.cuda.max_memory_allocated(device) - baseline) / 2**20 if device.type == "cuda" else None
    return Measurement(statistics.median(times), min(times), max(times), peak)


def profile_table(fn: Callable[[], object], device: torch.device, rows: int = 20, warmup: int = 3) -> str:
    """A torch-profiler table of one run of ``fn`` after ``warmup`` runs, sorted by self device time on CUDA (kernels
    inside replayed CUDA graphs included), by self CPU time elsewhere."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(warmup):
        fn()
    _synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
        _synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows, max_name_column_width=70)


def geometric_mean(values: list[float]) -> float:
    """The geometric mean (NaN for no values)."""
    return statistics.geometric_mean(values) if values else float("nan")
