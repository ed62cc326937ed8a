"""Loading transforms: the point cloud of a sample and its annotations."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ada3d.datasets.io import drop_non_finite, load_points
from ada3d.datasets.transforms.base import BaseTransform, check_local_backend
from ada3d.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadPointsFromFile(BaseTransform):
    """Read ``results['lidar_points']['lidar_path']`` into ``results['points']`` (float32 ``[N, len(use_dim)]``).

    Points with a NaN or infinite value in a used column are dropped, with a warning that names the file and
    counts them. A file without (finite) points is an error unless ``allow_empty``.

    Args:
        coord_type: the frame of the points; only ``'LIDAR'``.
        load_dim: float32 values per point in the file.
        use_dim: the columns to keep: a count (the first ``use_dim``) or a list of indices.
        norm_intensity: squash column 3 (intensity) with ``tanh``.
        allow_empty: accept files without points (object crops of the GT database may be empty).
        backend_args: mmdet3d's file-backend settings; only local files are read, so it must be None.
    """

    def __init__(
        self,
        coord_type: str = "LIDAR",
        load_dim: int = 4,
        use_dim: int | Sequence[int] = 4,
        norm_intensity: bool = False,
        allow_empty: bool = False,
        backend_args: dict | None = None,
    ) -> None:
        check_local_backend(backend_args)
        if coord_type != "LIDAR":
            raise ValueError(f"LoadPointsFromFile reads LiDAR point clouds only (coord_type='LIDAR'), got {coord_type}")
        self.coord_type = coord_type
        self.load_dim = load_dim
        self.use_dim = list(range(use_dim)) if isinstance(use_dim, int) else list(use_dim)
        if not self.use_dim or max(self.use_dim) >= load_dim or min(self.use_dim) < 0:
            raise ValueError(f"use_dim {use_dim} must pick columns of the {load_dim} stored per point")
        if norm_intensity and len(self.use_dim) < 4:
            raise ValueError(f"norm_intensity squashes the 4th used column (intensity), but use_dim={use_dim}")
        self.norm_intensity = norm_intensity
        self.allow_empty = allow_empty

    def transform(self, results: dict) -> dict:
        path = results["lidar_points"]["lidar_path"]
        stored = load_points(path, self.load_dim)
        points = drop_non_finite(np.ascontiguousarray(stored[:, self.use_dim]), path)
        if not len(points) and not self.allow_empty:
            dropped = len(stored) - len(points)
            raise ValueError(f"{path}: no points to load ({len(stored)} stored, {dropped} of them non-finite)")
        if self.norm_intensity:
            points[:, 3] = np.tanh(points[:, 3])
        results["points"] = points
        return results


@TRANSFORMS.register_module()
class LoadAnnotations3D(BaseTransform):
    """Copy the targets of ``results['ann_info']`` (written by the dataset) to the top level.

    Args:
        with_bbox_3d: ``gt_bboxes_3d`` float32 ``[M, 7]`` LiDAR boxes (x, y, z, l, w, h, yaw), z the bottom centre.
        with_label_3d: ``gt_labels_3d`` int64 ``[M]``.
        with_bbox: ``gt_bboxes`` float32 ``[M, 4]`` image boxes (x1, y1, x2, y2).
        with_label: ``gt_bboxes_labels`` int64 ``[M]``.
    """

    def __init__(
        self, with_bbox_3d: bool = True, with_label_3d: bool = True, with_bbox: bool = False, with_label: bool = False
    ) -> None:
        self.with_bbox_3d = with_bbox_3d
        self.with_label_3d = with_label_3d
        self.with_bbox = with_bbox
        self.with_label = with_label

    def transform(self, results: dict) -> dict:
        if "ann_info" not in results:
            raise KeyError("LoadAnnotations3D needs results['ann_info']: the dataset adds it when not in test_mode")
        wanted = {"gt_bboxes_3d": self.with_bbox_3d, "gt_labels_3d": self.with_label_3d, "gt_bboxes": self.with_bbox,
                  "gt_bboxes_labels": self.with_label}
        for key, load in wanted.items():
            if load:
                results[key] = results["ann_info"][key].copy()
        return results
