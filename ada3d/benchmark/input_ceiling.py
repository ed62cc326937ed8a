"""The ceiling of voxel dropping: a dense model's 3D part timed on fewer input voxels.

Any scheme that drops voxels (Ada3D's included) saves at most what the dense 3D part saves when the voxels are simply
absent from its input. :func:`input_ceiling` keeps a share of the input's voxel columns (every voxel of an
importance-grid cell, the cells drawn at random with a seed, so the kept voxels spread over the scene as a drop by
cells does) and times the dense model's ``encode_3d`` on them: dropping at no cost, before the stem. Where the time
falls slower than the voxel count, the part is bound by fixed costs (kernel launches, per-layer map building) that no
dropping removes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ada3d.benchmark.detector_frames import DetectorFrame
from ada3d.benchmark.pruning_stats import StageCounts
from ada3d.benchmark.timing import measure
from ada3d.models.adaptive.column_ops import site_cells
from ada3d.models.detectors.graphed import GraphedDetector
from ada3d.models.middle_encoders.sparse_encoder import INPUT_STAGE
from sparse_ops import SparseTensor


@dataclass
class CeilingPoint:
    """The dense 3D part on one share of the input columns, over all frames: ``voxels`` kept / ``total_voxels``,
    median ``ms`` per frame averaged over the frames."""

    share: float
    voxels: int
    total_voxels: int
    ms: float

    @property
    def voxel_share(self) -> float:
        return self.voxels / max(self.total_voxels, 1)


def stem_voxel_share(stages: Sequence[StageCounts]) -> float:
    """The share of the input voxels a model's stem runs on, from its drop stages' counts: what a drop before the
    stem (:data:`~ada3d.models.middle_encoders.sparse_encoder.INPUT_STAGE`) kept, else 1 (the stem sees every
    voxel). Where a model sits on the ceiling's x axis."""
    before_stem = [counts for counts in stages if counts.stage == INPUT_STAGE]
    if not before_stem:
        return 1.0
    return before_stem[0].sites_after / max(before_stem[0].sites_before, 1)


def keep_input_columns(voxels: dict, keep_cells: torch.Tensor, sparse_shape: Sequence[int]) -> dict:
    """The hard voxels whose importance cell is kept.

    Args:
        voxels: ``dict(voxels [V, P, C], num_points [V], coors [V, 4] (b, z, y, x), batch_size)``.
        keep_cells: ``[B, H, W]`` bool on the importance grid.
        sparse_shape: the voxel grid ``(z, y, x)``; it relates to the importance grid by
            :func:`~ada3d.models.adaptive.bev_grid.downsample_factors`.
    """
    coors = voxels["coors"]
    sites = SparseTensor(coors.new_zeros(len(coors), 1), coors, sparse_shape, keep_cells.shape[0], validate=False)
    cells = site_cells(sites, keep_cells.shape[1:])
    keep = keep_cells.reshape(-1)[cells]
    return dict(voxels, **{key: voxels[key][keep] for key in ("voxels", "num_points", "coors")})


def input_ceiling(
    model: torch.nn.Module,
    frames: list[DetectorFrame],
    shares: Sequence[float],
    device: torch.device,
    warmup: int = 2,
    repeats: int = 5,
    cuda_graphs: bool = False,
    seed: int = 0,
) -> list[CeilingPoint]:
    """Time ``model.encode_3d`` (a dense VoxelNet, eval mode) on each share of every frame's input columns.

    Args:
        model: the dense detector.
        frames: its input batches.
        shares: shares of the importance-grid cells kept, in ``(0, 1]`` (each cell kept with this probability).
        device: where it runs.
        warmup, repeats: per frame and share (:func:`~ada3d.benchmark.timing.measure`).
        cuda_graphs: time through a :class:`GraphedDetector` (one per share: its capacities fit that share).
        seed: of the cell draws. Every share sees the same draws, so a smaller share keeps a subset of a larger
            share's columns.
    """
    if any(not 0.0 < share <= 1.0 for share in shares):
        raise ValueError(f"input-column shares must lie in (0, 1], got {list(shares)}")
    encoder = model.middle_encoder
    grid = tuple(int(s) for s in encoder.out_spatial_shape[-2:])
    points = []
    with torch.no_grad():
        inputs = [model.data_preprocessor(frame.batch, False)["inputs"]["voxels"] for frame in frames]
        for share in shares:
            generator = torch.Generator().manual_seed(seed)
            graphed = GraphedDetector(model, capture=device.type == "cuda", copy_outputs=False) if cuda_graphs else None
            encode = graphed.encode_3d if graphed is not None else model.encode_3d
            kept_voxels, total, times = 0, 0, []
            for voxels in inputs:
                cells = torch.rand(int(voxels["batch_size"]), *grid, generator=generator) < share
                kept = keep_input_columns(voxels, cells.to(voxels["coors"].device), encoder.sparse_shape)
                kept_voxels += len(kept["coors"])
                total += len(voxels["coors"])
                run = functools.partial(encode, kept)
                times.append(measure(run, device, max(warmup, 1), repeats).median_ms)
            points.append(CeilingPoint(share, kept_voxels, total, sum(times) / len(times)))
    return points


def ceiling_table(points: list[CeilingPoint]) -> str:
    """Markdown: share of columns and voxels kept, 3D ms, and the speed-up over the full input."""
    full = next((p.ms for p in points if p.share == 1.0), None)
    lines = ["| input columns kept | voxels kept | dense 3D ms | speed-up over the full input |",
             "| ---: | ---: | ---: | ---: |"]  # fmt: skip
    for p in points:
        speedup = f"{full / p.ms:.2f}x" if full else ""
        lines.append(f"| {p.share:.0%} | {p.voxel_share:.1%} | {p.ms:.2f} | {speedup} |")
    return "\n".join(lines)


def plot_ceiling(points: list[CeilingPoint], path: Path, title: str, marks: dict[str, tuple[float, float]]) -> None:
    """3D ms vs share of input voxels kept; ``marks``: labelled ``(voxel share, ms)`` points (e.g. Ada3D's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.4))
    line = sorted((p.voxel_share * 100, p.ms) for p in points)
    axis.plot(*zip(*line), marker="o", label="dense 3D part, input columns dropped for free")
    full = next((p.ms for p in points if p.share == 1.0), None)
    if full is not None:
        axis.axhline(full / 1.5, color="grey", linestyle="--", label="1.5x faster than the full input")
    for label, (share, ms) in marks.items():
        axis.plot(share * 100, ms, marker="s", linestyle="none", label=label)
    axis.set_xlabel("input voxels kept (%)")
    axis.set_ylabel("3D part, ms")
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
