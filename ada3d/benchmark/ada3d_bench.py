"""Dense vs Ada3D detectors on the same frames: density per drop stage, FLOPs, latency, peak memory.

Per frame and model: the data preprocessor voxelises once; then

* ``encode_3d(voxels)`` (the 3D backbone: VFE, sparse 3D encoder and, for Ada3D, its voxel-column drops) and
  ``encode_2d(bev)`` (the 2D backbone: for Ada3D the BEV pixel drop, then BEV backbone and neck) each run once
  under a :class:`~ada3d.benchmark.flops.FlopCounter`, then the head on their output: FLOPs per part;
* the drop stages' :class:`~ada3d.models.adaptive.pruning_record.PruningRecord` s (``model.last_pruning``) give
  the kept densities and the ground-truth cells dropped; a model without them counts its BEV map's non-zero
  pixels as occupied and kept; each BEV backbone stage's output gives the ground-truth centres it has features at;
* ``encode_3d``, ``encode_2d`` (on a copy of the BEV input with an empty kernel-map cache each time, so no run
  reuses maps built by an earlier one) and end to end (``model.test_step``: voxelisation, network, box decoding
  and NMS) are timed with warm-up, CUDA synchronisation and medians (:func:`~ada3d.benchmark.timing.measure`),
  with the peak memory of each on CUDA;
* with ``cuda_graphs``, ``encode_3d`` and ``encode_2d`` are timed again through a
  :class:`~ada3d.models.detectors.graphed.GraphedDetector` (padded execution replayed as CUDA graphs, captured
  during the warm-up; the same runner for dense and Ada3D models), beside the eager numbers.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from mmengine.config import Config
from tqdm import tqdm

from ada3d.benchmark.detector_frames import DetectorFrame
from ada3d.benchmark.flops import FlopCounter
from ada3d.benchmark.pruning_stats import (
    StageCounts,
    centres_with_features,
    dense_bev_counts,
    record_counts,
)
from ada3d.benchmark.timing import Measurement, measure, profile_table
from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.column_ops import drop_pixels
from ada3d.models.adaptive.heatmap import box_footprints
from ada3d.models.detectors.graphed import GraphedDetector
from sparse_ops.autotune import TuningReport, tune
from sparse_ops.tensor import SparseTensor

PARTS = ("3d", "2d", "head", "total")  # FLOP parts: encode_3d, encode_2d, bbox_head, their sum
TIMED = ("3d", "2d", "end_to_end")
TIMED_GRAPHS = ("3d_graphs", "2d_graphs")  # encode_3d / encode_2d replayed as CUDA graphs (cuda_graphs=True)
TIMED_LABELS = {"3d": "3D ms", "2d": "2D ms", "end_to_end": "end-to-end ms", "3d_graphs": "3D graph ms",
                "2d_graphs": "2D graph ms"}  # fmt: skip


@dataclass
class FrameResult:
    """One model on one frame. ``flops`` by :data:`PARTS`; ``flops_by_module`` by top-level module over the
    whole forward; ``latency`` by :data:`TIMED` (and :data:`TIMED_GRAPHS` when timed); ``stages`` one
    :class:`StageCounts` per drop stage; ``centres_seen`` (per BEV backbone stage) / ``centres``: ground-truth box
    centres whose pixel holds features, of those inside the range (:func:`centres_with_features`)."""

    name: str
    num_voxels: int
    stages: list[StageCounts]
    centres_seen: list[int]
    centres: int
    flops: dict[str, int]
    flops_by_module: dict[str, int]
    latency: dict[str, Measurement]


@dataclass
class ModelRun:
    """One model on every frame of one data source; ``class_names``: the classes its ground-truth cells were
    counted by (label order; empty: not counted per class)."""

    label: str
    data: str
    frames: list[FrameResult] = field(default_factory=list)
    class_names: tuple[str, ...] = ()

    def stage_totals(self) -> list[StageCounts]:
        """Each stage's counts summed over the frames, in stage order."""
        totals: dict[str, StageCounts] = {}
        for frame in self.frames:
            for counts in frame.stages:
                totals[counts.stage] = totals[counts.stage] + counts if counts.stage in totals else counts
        return list(totals.values())

    def mean_flops(self, part: str) -> float:
        return _mean([frame.flops[part] for frame in self.frames])

    def mean_ms(self, part: str) -> float:
        """Mean over the frames of each frame's median time."""
        return _mean([frame.latency[part].median_ms for frame in self.frames])

    def peak_mb(self, part: str) -> float | None:
        """The largest peak memory over the frames (None off CUDA)."""
        peaks = [frame.latency[part].peak_memory_mb for frame in self.frames]
        return None if None in peaks or not peaks else max(peaks)

    def centres_seen(self) -> list[float]:
        """Per BEV backbone stage, the share of ground-truth centres with features over all frames (NaN without
        boxes)."""
        total = sum(frame.centres for frame in self.frames)
        per_stage = [sum(counts) for counts in zip(*(frame.centres_seen for frame in self.frames))]
        return [seen / total if total else float("nan") for seen in per_stage]

    def mean_voxels(self) -> float:
        return _mean([frame.num_voxels for frame in self.frames])

    def timed_parts(self) -> tuple[str, ...]:
        """The parts timed on every frame: :data:`TIMED`, then :data:`TIMED_GRAPHS` if they were."""
        graphs = bool(self.frames) and all(part in frame.latency for frame in self.frames for part in TIMED_GRAPHS)
        return TIMED + TIMED_GRAPHS if graphs else TIMED


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def load_detector(
    config: str, checkpoint: str, device: torch.device, cfg_options: dict | None = None
) -> tuple[torch.nn.Module, Config]:
    """The detector of ``config`` with the weights of ``checkpoint`` (strict), in eval mode on ``device``.

    Raises:
        FileNotFoundError: for a missing config or checkpoint file.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import ada3d.models  # noqa: F401  (registers the detectors)
    from ada3d.engine import load_config  # also registers checkpoint loading under torch >= 2.6
    from ada3d.registry import MODELS

    cfg = load_config(config, cfg_options, checkpoint)
    init_default_scope(cfg.get("default_scope", "ada3d"))
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location="cpu", strict=True, logger="silent")
    return model.to(device).eval(), cfg


def class_names(cfg: Config) -> list[str]:
    """The detector's class names, in label order: ``cfg.class_names`` or the val dataset's ``metainfo.classes``."""
    dataset = cfg.get("val_dataloader", {}).get("dataset", {})
    names = cfg.get("class_names") or dataset.get("metainfo", {}).get("classes")
    if not names:
        raise ValueError(f"{cfg.filename}: neither class_names nor val_dataloader.dataset.metainfo.classes is set")
    return list(names)


def fresh_input(bev: torch.Tensor | SparseTensor) -> torch.Tensor | SparseTensor:
    """``bev`` itself if dense; a sparse one as a new tensor on the same sites with an empty kernel-map cache."""
    if isinstance(bev, SparseTensor):
        return SparseTensor(bev.features, bev.indices, bev.spatial_shape, bev.batch_size, validate=False)
    return bev


def kept_pixels(model: torch.nn.Module, bev: torch.Tensor | SparseTensor) -> torch.Tensor | SparseTensor:
    """The BEV input the 2D backbone ran on in the model's last ``encode_2d``: for Ada3D the occupied pixels ``bev``
    thinned to the cells its ``'bev'`` record kept (the same cells, not a second drop: under the random strategy a
    second one would draw others); otherwise :func:`fresh_input` of ``bev``."""
    record = next((r for r in getattr(model, "last_pruning", ()) if r.stage == "bev"), None)
    if record is None or not isinstance(bev, SparseTensor):
        return fresh_input(bev)
    return drop_pixels(fresh_input(bev), record.kept)


def gt_cell_masks(
    model: torch.nn.Module, frame: DetectorFrame, grid_shape: tuple[int, int], num_classes: int = 0
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """bool ``[B, H, W]`` the importance cells of each sample whose centre lies in one of its ground-truth boxes, and
    the same per class for labels ``0 .. num_classes - 1`` (each box's footprint is computed once)."""
    grid = _importance_grid(model, grid_shape)

    def footprints(chosen: list[torch.Tensor]) -> torch.Tensor:  # chosen: per sample, bool over its boxes
        return box_footprints([boxes[keep] for boxes, keep in zip(frame.gt_boxes, chosen)], grid)[:, 0]

    class_cells = [footprints([labels == label for labels in frame.gt_labels]) for label in range(num_classes)]
    unclassed = footprints([(labels < 0) | (labels >= num_classes) for labels in frame.gt_labels])
    return functools.reduce(torch.logical_or, class_cells, unclassed), class_cells


def _importance_grid(model: torch.nn.Module, grid_shape: tuple[int, int]) -> BevGrid:
    layer = model.data_preprocessor.voxel_layer
    return BevGrid.from_voxel_grid(layer.point_cloud_range, layer.voxel_size, model.middle_encoder.sparse_shape,
                                   grid_shape)  # fmt: skip


def _stage_counts(model, frame: DetectorFrame, bev, num_classes: int) -> list[StageCounts]:
    records = list(getattr(model, "last_pruning", None) or [])
    if not records and isinstance(bev, SparseTensor):
        raise ValueError(f"{type(model).__name__}.encode_3d returned a SparseTensor but encode_3d / encode_2d left no "
                         "last_pruning records")
    grid_shape = tuple(records[0].occupied.shape[1:]) if records else tuple(bev.shape[2:])
    gt_cells, class_cells = gt_cell_masks(model, frame, grid_shape, num_classes)
    if records:
        return [record_counts(record, gt_cells, class_cells) for record in records]
    return [dense_bev_counts(bev, gt_cells, class_cells)]


def _counted(counter: FlopCounter, fn: Callable[[], object]) -> tuple[object, int, dict[str, int]]:
    """``fn()``'s output, its FLOPs and its FLOPs per top-level module."""
    counter.reset()
    with counter:
        output = fn()
    return output, counter.total, counter.by_module


def benchmark_frame(
    model: torch.nn.Module,
    frame: DetectorFrame,
    device: torch.device,
    warmup: int = 2,
    repeats: int = 5,
    graphed: GraphedDetector | None = None,
    num_classes: int = 0,
) -> FrameResult:
    """FLOPs, drop-stage counts and timings of ``model`` (in eval mode, on ``device``) on ``frame``; with
    ``graphed`` (a GraphedDetector of ``model``), the 3D and 2D parts are also timed through it. The ground-truth
    cells are also counted per class for labels ``0 .. num_classes - 1``."""
    counter = FlopCounter(model)
    with torch.no_grad():
        voxels = model.data_preprocessor(frame.batch, False)["inputs"]["voxels"]
        bev, flops_3d, modules_3d = _counted(counter, lambda: model.encode_3d(voxels))
        maps, flops_2d, modules_2d = _counted(counter, lambda: model.encode_2d(fresh_input(bev)))
        stages = _stage_counts(model, frame, bev, num_classes)  # Ada3D's records: 3D drops, then the BEV drop
        _, flops_head, modules_head = _counted(counter, lambda: model.bbox_head(maps))
        point_cloud_range = model.data_preprocessor.voxel_layer.point_cloud_range
        stage_maps = model.backbone(kept_pixels(model, bev))  # dense maps per stage, zero where a stage is inactive
        seen, centres = centres_with_features(stage_maps, frame.gt_boxes, point_cloud_range)
        latency = {
            "3d": measure(lambda: model.encode_3d(voxels), device, warmup, repeats),
            "2d": measure(lambda: model.encode_2d(fresh_input(bev)), device, warmup, repeats),
            "end_to_end": measure(lambda: model.test_step(frame.batch), device, warmup, repeats),
        }
        if graphed is not None:  # the first warm-up run captures (or recaptures) the frame's graphs
            latency["3d_graphs"] = measure(lambda: graphed.encode_3d(voxels), device, max(warmup, 1), repeats)
            latency["2d_graphs"] = measure(lambda: graphed.encode_2d(bev), device, max(warmup, 1), repeats)
    flops = {"3d": flops_3d, "2d": flops_2d, "head": flops_head, "total": flops_3d + flops_2d + flops_head}
    by_module = dict(Counter(modules_3d) + Counter(modules_2d) + Counter(modules_head))
    return FrameResult(frame.name, len(voxels["coors"]), stages, seen, centres, flops, by_module, latency)


def benchmark_model(
    model: torch.nn.Module,
    frames: list[DetectorFrame],
    label: str,
    data: str,
    device: torch.device,
    warmup: int = 2,
    repeats: int = 5,
    cuda_graphs: bool = False,
    class_names: Sequence[str] = (),
) -> ModelRun:
    """:func:`benchmark_frame` on every frame, with a progress bar; ``cuda_graphs``: also through one
    GraphedDetector for all frames (off CUDA it replays padded execution eagerly instead of graphs);
    ``class_names`` (label order): count the dropped ground-truth cells per class too."""
    model.eval()
    graphed = GraphedDetector(model, capture=device.type == "cuda", copy_outputs=False) if cuda_graphs else None
    run = ModelRun(label, data, class_names=tuple(class_names))
    for frame in tqdm(frames, desc=f"{label} on {data}", unit="frame", leave=False):
        run.frames.append(benchmark_frame(model, frame, device, warmup, repeats, graphed, len(class_names)))
    return run


def tune_detector(model: torch.nn.Module, frame: DetectorFrame) -> TuningReport:
    """Autotune the sparse convs of ``model``'s 3D and 2D parts for inference on ``frame`` (:func:`sparse_ops.tune`,
    choices cached on disk); a model without sparse convs in a part is tuned in the others."""
    model.eval()
    with torch.no_grad():
        voxels = model.data_preprocessor(frame.batch, False)["inputs"]["voxels"]
    return tune(model, lambda: model.encode_2d(model.encode_3d(voxels)), mode="inference")


def profile_parts(
    model: torch.nn.Module, frame: DetectorFrame, device: torch.device, cuda_graphs: bool = False, rows: int = 20
) -> str:
    """Torch-profiler tables of ``encode_3d`` and ``encode_2d`` of ``model`` (eval mode) on ``frame``: eager, or with
    ``cuda_graphs`` replayed through a :class:`GraphedDetector` (the device kernels inside the graphs are listed)."""
    model.eval()
    graphed = GraphedDetector(model, capture=device.type == "cuda", copy_outputs=False) if cuda_graphs else None
    encode_3d = graphed.encode_3d if graphed is not None else model.encode_3d
    encode_2d = graphed.encode_2d if graphed is not None else model.encode_2d
    with torch.no_grad():
        voxels = model.data_preprocessor(frame.batch, False)["inputs"]["voxels"]
        bev = encode_3d(voxels)
        tables = [f"3D part (encode_3d){' as CUDA graphs' if graphed else ''}:",
                  profile_table(lambda: encode_3d(voxels), device, rows),
                  f"2D part (encode_2d){' as CUDA graphs' if graphed else ''}:",
                  profile_table(lambda: encode_2d(fresh_input(bev)), device, rows)]  # fmt: skip
    return "\n".join(tables)


def _percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"


def _ratio_to(value: float, reference: float | None) -> str:
    return "" if reference is None or not reference else f" ({value / reference:.2f}x)"


def compute_table(runs: list[ModelRun]) -> str:
    """One row per model: voxels, GFLOPs per part, median ms per timed part (CUDA-graph columns when every model
    has them), peak MB per backbone.

    Ratios in brackets are relative to the first model (the dense reference when one is given).
    """
    timed = min((run.timed_parts() for run in runs), key=len)
    header = ["model", "voxels", "3D GFLOPs", "2D GFLOPs", "head GFLOPs", "total GFLOPs",
              *(TIMED_LABELS[part] for part in timed), "3D peak MB", "2D peak MB",
              "GT centres with features (per BEV stage)"]
    rows = []
    reference = runs[0]
    for run in runs:
        is_reference = run is reference or len(runs) == 1
        row = [run.label, f"{run.mean_voxels():.0f}"]
        for part in PARTS:
            value = run.mean_flops(part)
            row.append(f"{value / 1e9:.2f}" + ("" if is_reference else _ratio_to(value, reference.mean_flops(part))))
        for part in timed:
            value = run.mean_ms(part)
            row.append(f"{value:.1f}" + ("" if is_reference else _ratio_to(value, reference.mean_ms(part))))
        for part in ("3d", "2d"):
            peak = run.peak_mb(part)
            row.append("n/a" if peak is None else f"{peak:.0f}")
        row.append(" / ".join(_percent(share) for share in run.centres_seen()))
        rows.append(row)
    return _markdown(header, rows)


def density_table(runs: list[ModelRun]) -> str:
    """One row per model and drop stage: sites kept, kept / occupied cells, BEV density (kept / all cells),
    occupied / all cells, and the fraction of occupied ground-truth cells that were dropped, in all and (when the
    runs counted them) per class."""
    header = ["model", "stage", "sites kept", "kept / occupied", "kept / H*W", "occupied / H*W", "GT cells dropped",
              "GT cells"]
    by_class = any(run.class_names for run in runs)
    if by_class:
        header.append("GT cells dropped by class")
    rows = []
    for run in runs:
        for c in run.stage_totals():
            rows.append([run.label, c.stage, _percent(c.sites_kept), _percent(c.kept_of_occupied),
                         _percent(c.kept_of_grid), _percent(c.occupied_of_grid), _percent(c.gt_dropped_fraction),
                         str(c.gt_occupied)])  # fmt: skip
            if by_class:
                shares = zip(run.class_names, c.gt_dropped_fraction_by_class, c.gt_occupied_by_class, strict=True)
                rows[-1].append(" / ".join(f"{name} {_percent(share)} of {cells}" for name, share, cells in shares))
    return _markdown(header, rows)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    align = ["---"] + ["---:"] * (len(header) - 1)
    return "\n".join("| " + " | ".join(row) + " |" for row in [header, align, *rows])


def report(runs: list[ModelRun], environment_line: str, settings: str, command: str) -> str:
    """Markdown: a title line, the command, then the compute and density tables of one data source."""
    data = runs[0].data
    frames = len(runs[0].frames)
    heading = f"Ada3D benchmark, {data}, {frames} frame(s) | {environment_line} | {settings}"
    notes = (
        "FLOPs: 2 x multiply-adds of the convolutions and linear layers that ran (sparse convs by kernel-map pairs). "
        "ms: mean over frames of the median per frame; 3D = encode_3d (VFE, 3D encoder, Ada3D's voxel-column "
        "drops), 2D = encode_2d (Ada3D's BEV pixel drop, BEV backbone, neck), "
        "end-to-end = voxelisation to boxes after NMS; graph ms (with --cuda-graphs): 3D and 2D replayed as CUDA "
        "graphs (padded execution, one graph per input size bucket, captured in the warm-up). Peak MB: CUDA only. "
        "Cells: the importance (BEV) grid; "
        "GT cells dropped: occupied cells with their centre in a ground-truth box that were not kept; by class: the "
        "same for the boxes of each class. "
        "GT centres with features: ground-truth boxes whose centre pixel is non-zero in each BEV backbone stage's "
        "output (a sparse backbone computes only at its active pixels)."
    )
    return f"{heading}\n\n`{command}`\n\n{notes}\n\n{compute_table(runs)}\n\n{density_table(runs)}\n"


def run_to_json(run: ModelRun) -> dict:
    """The run's summary and per-frame results as JSON-ready values (NaN as None)."""

    def number(value: float | None):
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value

    def stage(counts: StageCounts) -> dict:
        ratios = ("sites_kept", "kept_of_occupied", "kept_of_grid", "occupied_of_grid", "gt_dropped_fraction")
        by_class = dict(zip(run.class_names, map(number, counts.gt_dropped_fraction_by_class), strict=True))
        return {**vars(counts), **{name: number(getattr(counts, name)) for name in ratios},
                "gt_dropped_fraction_by_class": by_class}  # fmt: skip

    return dict(
        label=run.label,
        data=run.data,
        class_names=list(run.class_names),
        summary=dict(
            voxels=run.mean_voxels(),
            flops={part: run.mean_flops(part) for part in PARTS},
            median_ms={part: run.mean_ms(part) for part in run.timed_parts()},
            peak_memory_mb={part: run.peak_mb(part) for part in ("3d", "2d")},
            stages=[stage(counts) for counts in run.stage_totals()],
            gt_centres_with_features=[number(share) for share in run.centres_seen()],
        ),
        frames=[
            dict(
                name=frame.name,
                voxels=frame.num_voxels,
                flops=frame.flops,
                flops_by_module=frame.flops_by_module,
                latency={part: vars(m) for part, m in frame.latency.items()},
                stages=[stage(counts) for counts in frame.stages],
                gt_centres=dict(with_features=frame.centres_seen, total=frame.centres),
            )
            for frame in run.frames
        ],
    )
