"""A :class:`~ada3d.visualization.frame_view.FrameView` in one ``.npz`` file, so a model run (ours or
another framework's) can hand its boxes and pruning masks to ``tools/visualize.py --frame-view``.

Layout: arrays ``points``, ``gt_boxes``, ``pred_boxes`` and, where present, ``gt_labels``, ``pred_scores``,
``pred_labels``; per stage ``i``: ``stage{i}_kept`` and, where present, ``stage{i}_coords``,
``stage{i}_importance``; and ``meta``, a JSON string with the name, class names and, per stage, its
name and grid geometries. No pickles: the file loads with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ada3d.visualization.frame_view import FrameView, GridGeometry, PruningStage

FORMAT_VERSION = 1
_OPTIONAL_ARRAYS = ("gt_labels", "pred_scores", "pred_labels")


def _grid_json(grid: GridGeometry | None) -> dict | None:
    return None if grid is None else {"cell_size": list(grid.cell_size),
                                      "point_cloud_range": list(grid.point_cloud_range)}


def _grid(meta: dict | None) -> GridGeometry | None:
    return None if meta is None else GridGeometry(tuple(meta["cell_size"]), tuple(meta["point_cloud_range"]))


def save_frame_view(view: FrameView, path: str | Path) -> Path:
    """Write ``view`` to ``path`` (``.npz``, compressed); returns the path."""
    path = Path(path)
    arrays = {"points": view.points, "gt_boxes": view.gt_boxes, "pred_boxes": view.pred_boxes}
    arrays.update({key: getattr(view, key) for key in _OPTIONAL_ARRAYS if getattr(view, key) is not None})
    stages = []
    for index, stage in enumerate(view.stages):
        arrays[f"stage{index}_kept"] = stage.kept
        if stage.coords is not None:
            arrays[f"stage{index}_coords"] = stage.coords.astype(np.int32)
        if stage.importance is not None:
            arrays[f"stage{index}_importance"] = stage.importance
        stages.append({"name": stage.name, "grid": _grid_json(stage.grid),
                       "importance_grid": _grid_json(stage.importance_grid)})
    meta = {"version": FORMAT_VERSION, "name": view.name, "class_names": list(view.class_names), "stages": stages}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        np.savez_compressed(file, meta=np.array(json.dumps(meta)), **arrays)
    return path


def load_frame_view(path: str | Path) -> FrameView:
    """Read a file written by :func:`save_frame_view`; errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"frame-view file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, OSError) as error:
        raise ValueError(f"{path}: not a frame-view .npz file ({error})") from None
    if "meta" not in arrays or "points" not in arrays:
        raise ValueError(f"{path}: a frame-view file needs 'meta' and 'points' arrays, found {sorted(arrays)}")
    meta = json.loads(str(arrays["meta"]))
    if meta.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: frame-view format version {meta.get('version')}, this code reads {FORMAT_VERSION}")
    try:
        stages = [
            PruningStage(
                name=stage["name"],
                kept=arrays[f"stage{index}_kept"],
                coords=arrays.get(f"stage{index}_coords"),
                grid=_grid(stage["grid"]),
                importance=arrays.get(f"stage{index}_importance"),
                importance_grid=_grid(stage["importance_grid"]),
            )
            for index, stage in enumerate(meta["stages"])
        ]
        return FrameView(
            points=arrays["points"], name=meta["name"], gt_boxes=arrays.get("gt_boxes", np.zeros((0, 7))),
            pred_boxes=arrays.get("pred_boxes", np.zeros((0, 7))), class_names=tuple(meta["class_names"]),
            stages=stages, **{key: arrays.get(key) for key in _OPTIONAL_ARRAYS},
        )
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path}: inconsistent frame-view file: {error}") from None
