"""A detector run on one frame, as the viewer shows it: predicted boxes and, for Ada3D, what each stage kept.

:func:`predict_frame` voxelises a :class:`FrameView`'s points with the model's data preprocessor, runs the
detector (``mode='predict'``) and returns the view with its predictions and, for an
:class:`~ada3d.models.detectors.ada3d_voxelnet.Ada3DVoxelNet`, one :class:`PruningStage` per drop stage:

* ``"3D input"``: the voxels the encoder received, all kept, on the voxel grid (points outside the range, or in
  voxels the voxeliser's ``max_voxels`` left out, are not in the stage);
* one stage per :class:`~ada3d.models.adaptive.pruning_record.PruningRecord` of ``model.last_pruning`` in network
  order (``"before the stem"`` for a drop of input voxels, ``"after encoder_layer1"`` ..., then ``"BEV"``):
  cell-level on the importance grid, its cells the record's occupied ones and ``kept`` its kept mask. A 3D drop
  removes whole voxel columns, so a point's status is its BEV cell's; points in cells that an earlier stage
  dropped are not in the stage. A stage that ranked its cells (keep ratio below 1) carries the scores it ranked
  them by as its importance map (NaN on unoccupied cells).

A dense ``VoxelNet`` leaves no records: its view has predictions only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.pruning_record import PruningRecord
from ada3d.models.middle_encoders.sparse_encoder import INPUT_STAGE
from ada3d.structures import Det3DDataSample
from ada3d.visualization.frame_view import FrameView, GridGeometry, PruningStage

VOXEL_INPUT_STAGE = "3D input"
STEM_STAGE = "before the stem"
BEV_STAGE = "BEV"


def stage_name(record_stage: str) -> str:
    """Viewer name of a drop stage: ``'bev'`` -> ``"BEV"``, ``'input'`` -> ``"before the stem"``,
    ``'encoder_layer2'`` -> ``"after encoder_layer2"``."""
    if record_stage == INPUT_STAGE:
        return STEM_STAGE
    return BEV_STAGE if record_stage == "bev" else f"after {record_stage}"


def bev_grid_geometry(grid: BevGrid, z_range: tuple[float, float]) -> GridGeometry:
    """The viewer's :class:`GridGeometry` of an importance grid (its ``[H, W]`` cells from ``(x_min, y_min)``)."""
    return GridGeometry(
        (grid.cell_x, grid.cell_y),
        (grid.x_min, grid.y_min, z_range[0], grid.x_min + grid.width * grid.cell_x,
         grid.y_min + grid.height * grid.cell_y, z_range[1]),
    )


def keep_ratios(model: torch.nn.Module) -> dict[str, float]:
    """The keep ratio of each drop stage of an Ada3D model (``'bev'`` included); empty for a dense model."""
    if not hasattr(model, "drop_3d_stages"):
        return {}
    return {**dict(zip(model.drop_3d_stages, model.keep_ratios_3d)), "bev": model.keep_ratio_bev}


def record_stage(record: PruningRecord, grid: GridGeometry, ranked: bool, sample: int = 0) -> PruningStage:
    """One sample's cells of a drop stage as a cell-level :class:`PruningStage` on ``grid`` (the importance grid).

    Args:
        record: the stage's record; masks ``[B, H, W]``.
        grid: ``record.grid`` as a :class:`GridGeometry` (:func:`bev_grid_geometry`).
        ranked: whether the stage ranked its cells (keep ratio below 1): then ``record.scores`` on the occupied
            cells become the stage's importance map.
        sample: the batch index.
    """
    occupied = record.occupied[sample].cpu().numpy()
    kept = record.kept[sample].cpu().numpy()
    if grid.shape != occupied.shape:
        raise ValueError(f"stage {record.stage!r}: masks of shape {occupied.shape} do not match the grid's "
                         f"(H, W) = {grid.shape}")
    coords = np.argwhere(occupied)  # (y, x) rows, row-major
    importance = None
    if ranked:
        importance = np.where(occupied, record.scores[sample].float().cpu().numpy(), np.nan)
    return PruningStage(stage_name(record.stage), kept=kept[occupied], coords=coords, grid=grid,
                        importance=importance, importance_grid=grid if ranked else None)


def pruning_stages(
    records: Sequence[PruningRecord],
    voxel_coords: np.ndarray,
    voxel_grid: GridGeometry,
    ratios: dict[str, float],
    sample: int = 0,
) -> list[PruningStage]:
    """The ``"3D input"`` stage and one stage per record, in order.

    Args:
        records: ``model.last_pruning`` of the run.
        voxel_coords: ``[V, 3]`` int ``(z, y, x)`` voxels of ``sample`` that the encoder received.
        voxel_grid: the voxel grid (voxel size and point-cloud range of the model's voxeliser).
        ratios: keep ratio per record stage (:func:`keep_ratios`); a stage missing there counts as ranked.
        sample: the batch index of the records to take.
    """
    stages = [PruningStage(VOXEL_INPUT_STAGE, kept=np.ones(len(voxel_coords), bool), coords=voxel_coords,
                           grid=voxel_grid)]
    z_range = (voxel_grid.point_cloud_range[2], voxel_grid.point_cloud_range[5])
    for record in records:
        grid = bev_grid_geometry(record.grid, z_range)
        stages.append(record_stage(record, grid, ratios.get(record.stage, 0.0) < 1.0, sample))
    return stages


def _class_names_with(view_classes: Sequence[str], model_classes: Sequence[str]) -> tuple[str, ...]:
    """The view's class names followed by the model's that it lacks (ground truth keeps its label indices)."""
    return tuple(view_classes) + tuple(name for name in model_classes if name not in view_classes)


@torch.no_grad()
def predict_frame(
    model: torch.nn.Module, view: FrameView, class_names: Sequence[str], score_threshold: float = 0.3
) -> FrameView:
    """Run ``model`` (a ``VoxelNet`` or ``Ada3DVoxelNet`` in eval mode) on ``view.points``.

    Args:
        model: the detector; its data preprocessor voxelises, on the model's device.
        view: the frame (its ground truth is kept; predictions and stages are replaced).
        class_names: the model's classes in label order.
        score_threshold: predictions scoring below it are left out.

    Returns:
        a new :class:`FrameView` with ``pred_boxes [P, 7]``, ``pred_scores [P]``, ``pred_labels [P]`` (indices
        into its ``class_names``: the view's, then the model's it lacks) and the pruning stages (see the module
        docstring; none for a dense model).
    """
    if not 0.0 <= score_threshold <= 1.0:
        raise ValueError(f"score_threshold must lie in [0, 1], got {score_threshold}")
    sample = Det3DDataSample(metainfo=dict(sample_idx=view.name))
    batch = dict(inputs=dict(points=[torch.from_numpy(view.points)]), data_samples=[sample])
    data = model.data_preprocessor(batch, False)
    (result,) = model(**data, mode="predict")
    predictions = result.pred_instances_3d
    scores = predictions.scores_3d.float().cpu().numpy()
    keep = scores >= score_threshold
    names = _class_names_with(view.class_names, class_names)
    labels = predictions.labels_3d.cpu().numpy()[keep]
    if len(labels) and labels.max() >= len(class_names):
        raise ValueError(f"the model predicted label {labels.max()} but has only the classes {list(class_names)}")
    stages = []
    records = list(getattr(model, "last_pruning", None) or [])
    if records:
        layer = model.data_preprocessor.voxel_layer
        voxel_grid = GridGeometry(tuple(layer.voxel_size), tuple(layer.point_cloud_range))
        voxel_coords = data["inputs"]["voxels"]["coors"][:, 1:].cpu().numpy()
        stages = pruning_stages(records, voxel_coords, voxel_grid, keep_ratios(model))
    return replace(
        view,
        class_names=names,
        pred_boxes=predictions.bboxes_3d.float().cpu().numpy()[keep],
        pred_scores=scores[keep],
        pred_labels=np.array([names.index(class_names[label]) for label in labels], dtype=np.int64),
        stages=stages,
    )


def load_model(config: str, checkpoint: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, list[str]]:
    """The detector of ``config`` with ``checkpoint``'s weights (strict), in eval mode on ``device``, and its class
    names in label order.

    Raises:
        FileNotFoundError: for a missing config or checkpoint file.
    """
    from ada3d.benchmark.ada3d_bench import class_names, load_detector

    model, cfg = load_detector(config, checkpoint, torch.device(device))
    return model, class_names(cfg)
