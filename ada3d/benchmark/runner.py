"""Run a scenario: every engine, every batch, inference and training, outputs cross-checked."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from ada3d.benchmark.engines import Engine, restored_state, set_tf32
from ada3d.benchmark.inputs import EncoderInput, voxelize_batch
from ada3d.benchmark.scenarios import Scenario
from ada3d.benchmark.timing import Measurement, measure, profile_table

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

# Largest max-relative output difference to the reference engine that still counts as agreement.
# Measured: fp32 ~1e-6 (IEEE) and ~1e-3 (TF32), fp16 ~2e-3, on the SECOND encoder and real scans.
AGREEMENT_TOLERANCE = {"fp32": 1e-4, "fp32+tf32": 1e-2, "fp16": 2e-2, "bf16": 1e-1}


@dataclass(frozen=True)
class EngineResult:
    """One engine on one batch. ``max_relative_difference``: ``max |out - ref| / max |ref|`` against the
    reference engine's output (None for the reference itself)."""

    inference: Measurement
    training: Measurement | None
    max_relative_difference: float | None


@dataclass
class BatchResult:
    name: str
    num_points: int
    num_voxels: int
    engines: dict[str, EngineResult] = field(default_factory=dict)


@dataclass
class ScenarioRun:
    """All batches of one scenario at one dtype and batch size.

    ``reference``: the engine every output is compared with (``spconv`` when it ran, else ``ours``).
    ``precision``: ``fp32``, ``fp32+tf32``, ``fp16`` or ``bf16``.
    """

    scenario: Scenario
    precision: str
    batch_size: int
    engine_names: list[str]
    reference: str
    batches: list[BatchResult]

    @property
    def tolerance(self) -> float:
        return AGREEMENT_TOLERANCE[self.precision]

    def disagreements(self) -> list[str]:
        """``"batch: engine"`` for every output further from the reference than :attr:`tolerance`."""
        return [
            f"{batch.name}: {name} {result.max_relative_difference:.1e}"
            for batch in self.batches
            for name, result in batch.engines.items()
            if result.max_relative_difference is not None and not result.max_relative_difference <= self.tolerance
        ]


def max_relative_difference(output: torch.Tensor, reference: torch.Tensor) -> float:
    """``max |output - reference| / max |reference|``, in fp32 (NaN anywhere gives NaN)."""
    output, reference = output.float(), reference.float()
    return float((output - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


def run_scenario(
    scenario: Scenario,
    engines: list[Engine],
    device: torch.device,
    dtype: str = "fp32",
    batch_size: int = 1,
    warmup: int = 2,
    repeats: int = 5,
    tf32: bool = False,
) -> ScenarioRun:
    """Time every engine's inference and training on every batch of ``scenario``.

    The engines must hold the scenario's encoder in ``DTYPES[dtype]`` on ``device``. Per batch, the
    outputs of one inference of each engine are compared first, then each engine is timed alone.
    Training runs restore the weights and BatchNorm statistics afterwards, so the order of engines
    and batches changes nothing. ``tf32`` sets the global TF32 switches of torch and spconv
    (:func:`~ada3d.benchmark.engines.set_tf32`) for the whole run, on or off.
    """
    set_tf32(tf32)
    torch_dtype = DTYPES[dtype]
    names = [engine.name for engine in engines]
    reference = "spconv" if "spconv" in names else names[0]
    run = ScenarioRun(scenario, "fp32+tf32" if tf32 and dtype == "fp32" else dtype, batch_size, names, reference, [])
    groups = scenario.batches(batch_size)
    for name, clouds in tqdm(groups, desc=f"{scenario.name} {dtype} batch {batch_size}", unit="batch", leave=False):
        batch = voxelize_batch(name, clouds, scenario.voxelization, device)
        run.batches.append(_run_batch(batch, engines, reference, device, torch_dtype, warmup, repeats))
    return run


def _run_batch(
    batch: EncoderInput,
    engines: list[Engine],
    reference: str,
    device: torch.device,
    dtype: torch.dtype,
    warmup: int,
    repeats: int,
) -> BatchResult:
    differences = dict.fromkeys((engine.name for engine in engines), None)
    if len(engines) > 1:
        outputs = {engine.name: engine.inference(batch, dtype)() for engine in engines}
        for name, output in outputs.items():
            if name != reference:
                differences[name] = max_relative_difference(output, outputs[reference])
        del outputs  # not held while the engines' memory is measured
    result = BatchResult(batch.name, batch.num_points, len(batch.coors))
    for engine in engines:
        inference = measure(engine.inference(batch, dtype), device, warmup, repeats)
        with restored_state(engine.module):
            training = measure(engine.training(batch, dtype), device, warmup, repeats)
        result.engines[engine.name] = EngineResult(inference, training, differences[engine.name])
    return result


def profile_inference(
    engine: Engine, batch: EncoderInput, dtype: torch.dtype, device: torch.device, rows: int = 20
) -> str:
    """A torch-profiler table of one (warmed-up) inference of ``engine`` on ``batch``, by self device time."""
    return profile_table(engine.inference(batch, dtype), device, rows)
