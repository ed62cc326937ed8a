"""Benchmark of the SECOND SparseEncoder on real KITTI frames: ours, optionally next to spconv v2.

Inputs follow mmdet3d's SECOND KITTI settings: range [0, -40, -3, 70.4, 40, 1] m, voxels
0.05 x 0.05 x 0.1 m, hard voxelisation with 5 points per voxel and up to 40000 voxels, mean VFE.
Inference time is ``eval()`` + ``no_grad`` forward, kernel-map building included (every run starts
from a fresh SparseTensor). Training time is forward + backward in ``train()`` mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from ada3d.benchmark.timing import Measurement, geometric_mean, measure
from ada3d.datasets.io import load_points
from ada3d.models.middle_encoders import SparseEncoder
from ada3d.models.voxel_encoders import HardSimpleVFE
from ada3d.ops.voxelize import grid_shape, hard_voxelize
from sparse_ops.conv import ConvConfig
from sparse_ops.nn import SparseConvolution

VOXEL_SIZE = (0.05, 0.05, 0.1)
POINT_CLOUD_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
MAX_POINTS_PER_VOXEL = 5
MAX_VOXELS = 40000
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class EncoderInput:
    """One batch: mean voxel features ``[M, 4]``, coordinates ``[M, 4]`` (b, z, y, x) int32."""

    name: str
    num_points: int
    features: torch.Tensor
    coors: torch.Tensor
    batch_size: int


@dataclass
class FrameResult:
    name: str
    num_points: int
    num_voxels: int
    ours: dict[str, Measurement] = field(default_factory=dict)
    spconv: dict[str, Measurement] = field(default_factory=dict)
    max_relative_difference: float | None = None


def kitti_frames(data_root: str | Path, names: list[str] | None = None) -> list[Path]:
    """Velodyne files under ``data_root/training/velodyne`` (all, or the ``names`` given, e.g. ``000008``)."""
    folder = Path(data_root) / "training" / "velodyne"
    if names:
        paths = [folder / f"{name}.bin" for name in names]
    else:
        paths = sorted(folder.glob("*.bin"))
    if not paths:
        raise FileNotFoundError(f"no KITTI velodyne .bin files in {folder}")
    return paths


def voxelize_frame(path: Path, device: torch.device, batch_index: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean voxel features ``[M, 4]`` and ``(b, z, y, x)`` coordinates of one KITTI scan; also its point count."""
    points = torch.from_numpy(load_points(path)).to(device)
    voxels = hard_voxelize(points, VOXEL_SIZE, POINT_CLOUD_RANGE, MAX_POINTS_PER_VOXEL, MAX_VOXELS)
    features = HardSimpleVFE(4)(voxels.points, voxels.num_points)
    batch = torch.full((len(voxels.coords), 1), batch_index, dtype=torch.int32, device=device)
    return features, torch.cat([batch, voxels.coords], dim=1), len(points)


def build_inputs(paths: list[Path], device: torch.device, batch_size: int) -> list[EncoderInput]:
    """Consecutive frames grouped into batches of ``batch_size`` (the last group may be smaller)."""
    inputs = []
    for start in range(0, len(paths), batch_size):
        group = paths[start : start + batch_size]
        parts = [voxelize_frame(path, device, b) for b, path in enumerate(group)]
        inputs.append(
            EncoderInput(
                name="+".join(p.stem for p in group),
                num_points=sum(n for _, _, n in parts),
                features=torch.cat([f for f, _, _ in parts]),
                coors=torch.cat([c for _, c, _ in parts]),
                batch_size=len(group),
            )
        )
    return inputs


def _set_config(encoder: torch.nn.Module, config: ConvConfig | None) -> None:
    for module in encoder.modules():
        if isinstance(module, SparseConvolution):
            module.config = config


def build_encoder(device: torch.device, dtype: torch.dtype, seed: int = 0) -> SparseEncoder:
    """The mmdet3d default SECOND encoder with seeded random weights and non-trivial BN statistics."""
    torch.manual_seed(seed)
    z, y, x = grid_shape(VOXEL_SIZE, POINT_CLOUD_RANGE)
    encoder = SparseEncoder(4, (z + 1, y, x))  # one extra z layer, as mmdet3d's sparse_shape [41, 1600, 1408]
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return encoder.to(device, dtype)


def _inference(encoder: torch.nn.Module, batch: EncoderInput, dtype: torch.dtype):
    encoder.eval()
    features = batch.features.to(dtype)

    def run():
        with torch.no_grad():
            return encoder(features, batch.coors, batch.batch_size)

    return run


def _training(encoder: torch.nn.Module, batch: EncoderInput, dtype: torch.dtype):
    encoder.train()
    features = batch.features.to(dtype)

    def run():
        encoder.zero_grad(set_to_none=True)
        out = encoder(features, batch.coors, batch.batch_size)
        out.float().square().mean().backward()

    return run


def run_benchmark(
    paths: list[Path],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    batch_size: int = 1,
    warmup: int = 2,
    repeats: int = 5,
    compare_spconv: bool = False,
    config: ConvConfig | None = None,
) -> list[FrameResult]:
    """Time inference and training of our encoder (and spconv's twin) on each batch of frames.

    ``config`` forces one dataflow on every conv layer (default: each layer's default).
    """
    encoder = build_encoder(device, dtype)
    _set_config(encoder, config)
    engines = {"ours": encoder}
    if compare_spconv:
        from ada3d.benchmark.spconv_twin import import_spconv, to_spconv

        spconv = import_spconv()
        twin = to_spconv(encoder, spconv)
        twin.sparse_tensor_type = spconv.SparseConvTensor
        engines["spconv"] = twin
    results = []
    for batch in tqdm(build_inputs(paths, device, batch_size), desc="frames", unit="batch", leave=False):
        result = FrameResult(batch.name, batch.num_points, len(batch.coors))
        for engine, module in engines.items():
            timings = getattr(result, engine)
            timings["inference"] = measure(_inference(module, batch, dtype), device, warmup, repeats)
            timings["training"] = measure(_training(module, batch, dtype), device, warmup, repeats)
        if compare_spconv:
            outputs = [_inference(module, batch, dtype)().float() for module in engines.values()]
            scale = outputs[1].abs().max().clamp_min(1e-12)
            result.max_relative_difference = float((outputs[0] - outputs[1]).abs().max() / scale)
        results.append(result)
    return results


def profile_inference(
    path: Path, device: torch.device, dtype: torch.dtype, config: ConvConfig | None = None, rows: int = 20
) -> str:
    """A torch-profiler table of one (warmed-up) inference of our encoder on one frame, by device time."""
    from torch.profiler import ProfilerActivity, profile

    encoder = build_encoder(device, dtype)
    _set_config(encoder, config)
    batch = build_inputs([path], device, 1)[0]
    run = _inference(encoder, batch, dtype)
    for _ in range(3):
        run()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        run()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=sort_by, row_limit=rows)


def _ms(result: FrameResult, engine: str, kind: str) -> float:
    return getattr(result, engine)[kind].median_ms


def _speedup(result: FrameResult, kind: str) -> float:
    return _ms(result, "spconv", kind) / _ms(result, "ours", kind)


def format_table(results: list[FrameResult]) -> str:
    """A markdown table: one row per batch, then the geometric mean of times and speed-ups."""
    with_spconv = bool(results and results[0].spconv)
    kinds = ("inference", "training")
    header = ["frame", "points", "voxels", "ours fwd ms", "ours fwd+bwd ms"]
    if with_spconv:
        header += ["spconv fwd ms", "spconv fwd+bwd ms", "speed-up fwd", "speed-up fwd+bwd", "max rel diff"]
    rows = []
    for r in results:
        row = [r.name, str(r.num_points), str(r.num_voxels), *(f"{_ms(r, 'ours', k):.1f}" for k in kinds)]
        if with_spconv:
            row += [f"{_ms(r, 'spconv', k):.1f}" for k in kinds]
            row += [f"{_speedup(r, k):.2f}x" for k in kinds] + [f"{r.max_relative_difference:.1e}"]
        rows.append(row)
    summary = ["geomean", "", "", *(f"{geometric_mean([_ms(r, 'ours', k) for r in results]):.1f}" for k in kinds)]
    if with_spconv:
        summary += [f"{geometric_mean([_ms(r, 'spconv', k) for r in results]):.1f}" for k in kinds]
        summary += [f"{geometric_mean([_speedup(r, k) for r in results]):.2f}x" for k in kinds] + [""]
    rows.append(summary)
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, align, *rows])
