"""Markdown reports of scenario runs: a title with the environment, the input notes, one table."""

from __future__ import annotations

import importlib.metadata
import math
import platform
import sys

import torch

from ada3d.benchmark.runner import BatchResult, ScenarioRun
from ada3d.benchmark.timing import Measurement, geometric_mean

_KINDS = ("inference", "training")


def environment(device: torch.device) -> str:
    """The device (GPU name, or CPU and thread count) and the versions of torch, Triton and spconv."""
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)"
    versions = [f"{package} {_version(package)}" for package in ("torch", "triton", "spconv") if _version(package)]
    return ", ".join([where, *versions])


def _version(package: str) -> str | None:
    """The version of an imported package, else of the installed distribution providing it (None: neither)."""
    module = sys.modules.get(package)
    if getattr(module, "__version__", None):
        return str(module.__version__)
    for distribution in importlib.metadata.packages_distributions().get(package, [])[:1]:  # e.g. spconv-cu126
        return importlib.metadata.version(distribution)
    return None


def title(run: ScenarioRun, environment_line: str, settings: str) -> str:
    """``scenario, precision, batch | environment | settings`` on one line."""
    return f"{run.scenario.title}, {run.precision}, batch {run.batch_size} | {environment_line} | {settings}"


def report(run: ScenarioRun, environment_line: str, settings: str, command: str) -> str:
    """Title, input notes, the command that reproduces it, and the table (markdown)."""
    heading = title(run, environment_line, settings)
    return f"{heading}\n\nInput: {run.scenario.notes}\n\n`{command}`\n\n{format_table(run)}\n"


def _ms(measurement: Measurement | None) -> str:
    return "-" if measurement is None else f"{measurement.median_ms:.1f}"


def _mb(measurement: Measurement | None) -> str:
    if measurement is None or measurement.peak_memory_mb is None:
        return "-"
    return f"{measurement.peak_memory_mb:.0f}"


def _speedup(batch: BatchResult, engine: str, kind: str) -> float | None:
    """spconv's median time over ``engine``'s (> 1: faster than spconv); None where either is missing."""
    ours, theirs = getattr(batch.engines[engine], kind), getattr(batch.engines["spconv"], kind)
    return None if ours is None or theirs is None else theirs.median_ms / ours.median_ms


def _times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _difference(value: float | None, tolerance: float) -> str:
    if value is None:
        return ""
    return f"{value:.1e}" + ("" if value <= tolerance else " (!)")


def format_table(run: ScenarioRun) -> str:
    """One row per (batch, engine), then one geometric-mean row per engine.

    Columns: medians (ms) of inference ("fwd") and training ("fwd+bwd"), their peak memory (MB, CUDA only),
    the speed-up over spconv (spconv time / engine time), and the max relative output difference to the
    reference engine, marked ``(!)`` above the dtype's tolerance. The geometric-mean rows give the
    worst difference.
    """
    with_spconv = "spconv" in run.engine_names
    with_memory = any(
        m is not None and m.peak_memory_mb is not None
        for b in run.batches
        for r in b.engines.values()
        for m in (r.inference, r.training)
    )
    header = ["batch", "points", "voxels", "engine", "fwd ms", "fwd+bwd ms"]
    if with_memory:
        header += ["fwd peak MB", "fwd+bwd peak MB"]
    if with_spconv:
        header += ["fwd vs spconv", "fwd+bwd vs spconv"]
    if len(run.engine_names) > 1:
        header.append(f"max rel diff vs {run.reference}")

    def cells(engine: str, measurements, memory, speedups, difference) -> list[str]:
        row = [engine, *measurements]
        if with_memory:
            row += memory
        if with_spconv:
            row += ["" if engine == "spconv" else _times(s) for s in speedups]
        if len(run.engine_names) > 1:
            row.append(_difference(difference, run.tolerance))
        return row

    rows = []
    for batch in run.batches:
        for engine, result in batch.engines.items():
            measured = [getattr(result, kind) for kind in _KINDS]
            speedups = [_speedup(batch, engine, kind) if with_spconv else None for kind in _KINDS]
            engine_cells = cells(
                engine, map(_ms, measured), map(_mb, measured), speedups, result.max_relative_difference
            )
            rows.append([batch.name, str(batch.num_points), str(batch.num_voxels), *engine_cells])
    for engine in run.engine_names:
        results = [batch.engines[engine] for batch in run.batches]
        medians, memory, speedups = [], [], []
        for kind in _KINDS:
            measured = [getattr(r, kind) for r in results]
            present = [m for m in measured if m is not None]
            medians.append(f"{geometric_mean([m.median_ms for m in present]):.1f}" if present else "-")
            peaks = [m.peak_memory_mb for m in present if m.peak_memory_mb is not None]
            memory.append(f"{geometric_mean(peaks):.0f}" if peaks else "-")
            ratios = [_speedup(b, engine, kind) for b in run.batches] if with_spconv else []
            speedups.append(geometric_mean(ratios) if ratios and None not in ratios else None)
        differences = [r.max_relative_difference for r in results if r.max_relative_difference is not None]
        worst = max(differences, key=lambda d: (math.isnan(d), d), default=None)
        rows.append(["geomean", "", "", *cells(engine, medians, memory, speedups, worst)])
    align = ["---"] + ["---:"] * 2 + ["---"] + ["---:"] * (len(header) - 4)
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, align, *rows])
