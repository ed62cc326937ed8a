"""Per-frame KITTI annotations as dicts of arrays: the input of :func:`ada3d.evaluation.kitti_eval`.

A frame's annotation holds one row per object, in KITTI camera format (the fields of
:class:`ada3d.datasets.kitti_files.KittiObject`):

========== ========= ==========================================================================
key        shape     meaning
========== ========= ==========================================================================
name       [N] str   class name (``Car``, ``Van``, ``DontCare``, ...)
truncated  [N]       truncation 0..1 (predictions: 0)
occluded   [N] int   occlusion 0..3 (predictions: 0)
alpha      [N]       observation angle (radians); -10 marks "no orientation"
bbox       [N, 4]    image box x1, y1, x2, y2 (pixels)
dimensions [N, 3]    l, h, w (metres)
location   [N, 3]    bottom centre x, y, z in the rectified camera frame (metres)
rotation_y [N]       rotation about camera y (radians)
score      [N]       confidence (ground truth: 0)
========== ========= ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ada3d.datasets.kitti_files import KittiObject

ANNO_SHAPES = {
    "name": (),
    "truncated": (),
    "occluded": (),
    "alpha": (),
    "bbox": (4,),
    "dimensions": (3,),
    "location": (3,),
    "rotation_y": (),
    "score": (),
}


def empty_anno() -> dict[str, np.ndarray]:
    """The annotation of a frame without objects."""
    anno = {key: np.zeros((0, *shape)) for key, shape in ANNO_SHAPES.items()}
    anno["name"] = np.zeros(0, dtype=str)
    anno["occluded"] = np.zeros(0, dtype=np.int64)
    return anno


def objects_to_anno(objects: Sequence[KittiObject]) -> dict[str, np.ndarray]:
    """Stack KITTI objects (e.g. from :func:`~ada3d.datasets.kitti_files.read_label_file`) into an
    annotation; objects without a score (ground truth) get score 0."""
    if not objects:
        return empty_anno()
    return {
        "name": np.array([obj.name for obj in objects]),
        "truncated": np.array([obj.truncated for obj in objects], dtype=np.float64),
        "occluded": np.array([obj.occluded for obj in objects], dtype=np.int64),
        "alpha": np.array([obj.alpha for obj in objects], dtype=np.float64),
        "bbox": np.array([obj.bbox for obj in objects], dtype=np.float64).reshape(-1, 4),
        "dimensions": np.array([obj.dimensions for obj in objects], dtype=np.float64).reshape(-1, 3),
        "location": np.array([obj.location for obj in objects], dtype=np.float64).reshape(-1, 3),
        "rotation_y": np.array([obj.rotation_y for obj in objects], dtype=np.float64),
        "score": np.array([0.0 if obj.score is None else obj.score for obj in objects], dtype=np.float64),
    }


def anno_to_objects(anno: dict[str, np.ndarray], with_score: bool = True) -> list[KittiObject]:
    """The rows of an annotation as KITTI objects (for :func:`~ada3d.datasets.kitti_files.write_label_file`)."""
    return [
        KittiObject(
            name=str(anno["name"][k]),
            truncated=float(anno["truncated"][k]),
            occluded=int(anno["occluded"][k]),
            alpha=float(anno["alpha"][k]),
            bbox=np.asarray(anno["bbox"][k], dtype=np.float64),
            dimensions=np.asarray(anno["dimensions"][k], dtype=np.float64),
            location=np.asarray(anno["location"][k], dtype=np.float64),
            rotation_y=float(anno["rotation_y"][k]),
            score=float(anno["score"][k]) if with_score else None,
        )
        for k in range(len(anno["name"]))
    ]


def check_anno(anno: dict, where: str, needs_score: bool) -> int:
    """Raise a ValueError naming ``where`` (e.g. "prediction of frame 12") when ``anno`` lacks a key or
    its arrays disagree in shape; returns the number of objects."""
    if not isinstance(anno, dict):
        raise ValueError(f"{where}: expected a dict of arrays, got {type(anno).__name__}")
    keys = [key for key in ANNO_SHAPES if key != "score" or needs_score]
    missing = [key for key in keys if key not in anno]
    if missing:
        raise ValueError(f"{where}: missing {', '.join(missing)}")
    count = len(anno["name"])
    for key in keys:
        shape = np.shape(anno[key])
        if count == 0 and shape[:1] == (0,):
            continue
        if shape != (count, *ANNO_SHAPES[key]):
            raise ValueError(f"{where}: {key} has shape {shape}, expected {(count, *ANNO_SHAPES[key])}")
    return count
