"""Augmentation and filtering of a LiDAR sample: ``points`` float32 ``[N, C]`` (x, y, z first) and the targets
``gt_bboxes_3d`` float32 ``[M, 7]`` LiDAR boxes (x, y, z, l, w, h, yaw; z the bottom centre) with
``gt_labels_3d`` int64 ``[M]``. Geometric transforms move points and boxes together, so a point inside a box
stays inside it; each records what it did (mmdet3d's keys) for the data sample's metainfo.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ada3d.datasets.transforms.base import BaseTransform, augmentation_rng
from ada3d.datasets.transforms.box_collision import bev_corners, bev_overlaps
from ada3d.registry import TRANSFORMS
from ada3d.structures import limit_period, points_in_boxes


def rotate_z(xyz: np.ndarray, angle: np.ndarray | float) -> np.ndarray:
    """Rotate ``[..., 3]`` coordinates counter-clockwise (seen from above) by ``angle`` radians about the z axis."""
    cos, sin = np.cos(angle), np.sin(angle)
    x, y = xyz[..., 0], xyz[..., 1]
    return np.stack([x * cos - y * sin, x * sin + y * cos, np.broadcast_to(xyz[..., 2], np.shape(x * cos))], -1)


def _append_flow(results: dict, step: str) -> None:
    results["transformation_3d_flow"] = [*results.get("transformation_3d_flow", []), step]


def _symmetric_range(value: float | Sequence[float]) -> tuple[float, float]:
    low, high = (-value, value) if np.isscalar(value) else value
    if low > high:
        raise ValueError(f"a range needs low <= high, got {value}")
    return float(low), float(high)


@TRANSFORMS.register_module()
class ObjectNoise(BaseTransform):
    """Move each ground-truth object and its points by a random rigid motion that collides with no other box.

    For every box in turn, ``num_try`` motions are drawn: a translation ``N(0, translation_std)`` (metres), a
    rotation about the box's own vertical axis from ``rot_range`` and one about the LiDAR's z axis from
    ``global_rot_range`` (radians). The first whose BEV footprint overlaps no other (already moved) box is applied;
    a box without such a motion stays put. Points inside a box (the first box, where boxes overlap) move with it.
    """

    def __init__(
        self,
        translation_std: Sequence[float] = (0.25, 0.25, 0.25),
        global_rot_range: Sequence[float] = (0.0, 0.0),
        rot_range: Sequence[float] = (-0.15707963267, 0.15707963267),
        num_try: int = 100,
    ) -> None:
        if len(translation_std) != 3 or num_try < 1:
            raise ValueError(f"translation_std needs 3 values and num_try >= 1, got {translation_std}, {num_try}")
        self.translation_std = tuple(float(s) for s in translation_std)
        self.global_rot_range = _symmetric_range(global_rot_range)
        self.rot_range = _symmetric_range(rot_range)
        self.num_try = num_try

    def transform(self, results: dict) -> dict:
        boxes = results["gt_bboxes_3d"].astype(np.float64)
        if not len(boxes):
            return results
        rng = augmentation_rng()
        shape = (len(boxes), self.num_try)
        translations = rng.normal(0.0, self.translation_std, (*shape, 3))
        own_angles = rng.uniform(*self.rot_range, shape)
        global_angles = rng.uniform(*self.global_rot_range, shape)

        points = results["points"]
        inside = points_in_boxes(points, boxes)
        owner = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
        corners = bev_corners(boxes)
        moved = boxes.copy()
        for i, box in enumerate(boxes):
            candidates = moved_boxes(box, translations[i], own_angles[i], global_angles[i])  # [T, 7]
            candidate_corners = bev_corners(candidates)
            collides = bev_overlaps(candidate_corners, np.delete(corners, i, axis=0)).any(axis=1)
            free = np.flatnonzero(~collides)
            if not free.size:
                continue
            choice = free[0]
            moved[i], corners[i] = candidates[choice], candidate_corners[choice]
            mine = owner == i
            points[mine, :3] = moved_points(
                points[mine, :3], box, translations[i, choice], own_angles[i, choice], global_angles[i, choice]
            )
        results["points"] = points
        results["gt_bboxes_3d"] = moved.astype(np.float32)
        return results


def moved_boxes(box: np.ndarray, translation: np.ndarray, own_angle: np.ndarray, global_angle: np.ndarray):
    """Box ``[7]`` under ``T`` motions (:class:`ObjectNoise`): turned by ``own_angle [T]`` about its centre, shifted
    by ``translation [T, 3]``, then turned by ``global_angle [T]`` about the LiDAR z axis -> ``[T, 7]``."""
    candidates = np.repeat(box[None], len(translation), axis=0)
    candidates[:, :3] = rotate_z(box[:3] + translation, global_angle)
    candidates[:, 6] += own_angle + global_angle
    return candidates


def moved_points(xyz: np.ndarray, box: np.ndarray, translation: np.ndarray, own_angle: float, global_angle: float):
    """Points ``[P, 3]`` of ``box`` under one motion of :func:`moved_boxes`."""
    return rotate_z(rotate_z(xyz - box[:3], own_angle) + box[:3] + translation, global_angle)


@TRANSFORMS.register_module()
class RandomFlip3D(BaseTransform):
    """Mirror the scene in bird's-eye view.

    Horizontal: ``y -> -y``, ``yaw -> -yaw`` with probability ``flip_ratio_bev_horizontal``; vertical:
    ``x -> -x``, ``yaw -> pi - yaw`` with probability ``flip_ratio_bev_vertical``. Records ``pcd_horizontal_flip``,
    ``pcd_vertical_flip``, ``transformation_3d_flow`` ('HF', 'VF'), and mmdet3d's image-flip record ``flip`` /
    ``flip_direction``: with ``sync_2d`` equal to the horizontal flip, otherwise False / None (no image is flipped).
    """

    def __init__(
        self, sync_2d: bool = True, flip_ratio_bev_horizontal: float = 0.0, flip_ratio_bev_vertical: float = 0.0
    ) -> None:
        for ratio in (flip_ratio_bev_horizontal, flip_ratio_bev_vertical):
            if not 0 <= ratio <= 1:
                raise ValueError(f"flip ratios are probabilities in [0, 1], got {ratio}")
        self.sync_2d = sync_2d
        self.flip_ratio_bev_horizontal = flip_ratio_bev_horizontal
        self.flip_ratio_bev_vertical = flip_ratio_bev_vertical

    def transform(self, results: dict) -> dict:
        rng = augmentation_rng()
        horizontal = bool(rng.random() < self.flip_ratio_bev_horizontal)
        vertical = bool(rng.random() < self.flip_ratio_bev_vertical)
        points, boxes = results["points"], results.get("gt_bboxes_3d")
        if horizontal:
            points[:, 1] = -points[:, 1]
            if boxes is not None:
                boxes[:, 1], boxes[:, 6] = -boxes[:, 1], -boxes[:, 6]
            _append_flow(results, "HF")
        if vertical:
            points[:, 0] = -points[:, 0]
            if boxes is not None:
                boxes[:, 0], boxes[:, 6] = -boxes[:, 0], np.pi - boxes[:, 6]
            _append_flow(results, "VF")
        results["pcd_horizontal_flip"] = horizontal
        results["pcd_vertical_flip"] = vertical
        results["flip"] = horizontal and self.sync_2d
        results["flip_direction"] = "horizontal" if results["flip"] else None
        return results


@TRANSFORMS.register_module()
class GlobalRotScaleTrans(BaseTransform):
    """Rotate about the LiDAR z axis, scale, then translate the whole scene (points and boxes).

    Args:
        rot_range: rotation angle range (radians; a number ``a`` means ``[-a, a]``), counter-clockwise.
        scale_ratio_range: uniform scale factor range.
        translation_std: standard deviation (metres) of a normal translation per axis.

    Records ``pcd_rotation`` (3x3 ``R^T``: rotated = points @ pcd_rotation), ``pcd_rotation_angle``,
    ``pcd_scale_factor``, ``pcd_trans`` and ``transformation_3d_flow`` ('R', 'S', 'T').
    """

    def __init__(
        self,
        rot_range: float | Sequence[float] = (-0.78539816, 0.78539816),
        scale_ratio_range: Sequence[float] = (0.95, 1.05),
        translation_std: float | Sequence[float] = (0.0, 0.0, 0.0),
    ) -> None:
        self.rot_range = _symmetric_range(rot_range)
        self.scale_ratio_range = _symmetric_range(scale_ratio_range)
        if self.scale_ratio_range[0] <= 0:
            raise ValueError(f"scale factors must be positive, got {scale_ratio_range}")
        std = [translation_std] * 3 if np.isscalar(translation_std) else list(translation_std)
        if len(std) != 3 or min(std) < 0:
            raise ValueError(f"translation_std needs 3 non-negative values, got {translation_std}")
        self.translation_std = tuple(float(s) for s in std)

    def transform(self, results: dict) -> dict:
        rng = augmentation_rng()
        angle = float(rng.uniform(*self.rot_range))
        scale = float(rng.uniform(*self.scale_ratio_range))
        translation = rng.normal(0.0, self.translation_std).astype(np.float32)
        cos, sin = np.cos(angle), np.sin(angle)
        rotation_t = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], dtype=np.float32)

        points = results["points"]
        points[:, :3] = (points[:, :3] @ rotation_t) * scale + translation
        boxes = results.get("gt_bboxes_3d")
        if boxes is not None:
            boxes[:, :3] = (boxes[:, :3] @ rotation_t) * scale + translation
            boxes[:, 3:6] *= scale
            boxes[:, 6] += angle
        results.update(pcd_rotation=rotation_t, pcd_rotation_angle=angle, pcd_scale_factor=scale, pcd_trans=translation)
        for step in "RST":
            _append_flow(results, step)
        return results


@TRANSFORMS.register_module()
class PointsRangeFilter(BaseTransform):
    """Keep points strictly inside ``point_cloud_range`` ``[x0, y0, z0, x1, y1, z1]`` (metres)."""

    def __init__(self, point_cloud_range: Sequence[float]) -> None:
        if len(point_cloud_range) != 6:
            raise ValueError(f"point_cloud_range needs 6 values, got {point_cloud_range}")
        self.point_cloud_range = np.asarray(point_cloud_range, dtype=np.float32)

    def transform(self, results: dict) -> dict:
        xyz = results["points"][:, :3]
        keep = ((xyz > self.point_cloud_range[:3]) & (xyz < self.point_cloud_range[3:])).all(axis=1)
        results["points"] = results["points"][keep]
        return results


@TRANSFORMS.register_module()
class ObjectRangeFilter(BaseTransform):
    """Keep boxes whose BEV centre lies strictly inside ``point_cloud_range`` (x and y); wraps yaw to [-pi, pi)."""

    def __init__(self, point_cloud_range: Sequence[float]) -> None:
        if len(point_cloud_range) != 6:
            raise ValueError(f"point_cloud_range needs 6 values, got {point_cloud_range}")
        self.point_cloud_range = np.asarray(point_cloud_range, dtype=np.float32)

    def transform(self, results: dict) -> dict:
        boxes = results["gt_bboxes_3d"]
        low, high = self.point_cloud_range[[0, 1]], self.point_cloud_range[[3, 4]]
        keep = ((boxes[:, :2] > low) & (boxes[:, :2] < high)).all(axis=1)
        boxes = boxes[keep]
        boxes[:, 6] = limit_period(boxes[:, 6])
        results["gt_bboxes_3d"] = boxes
        results["gt_labels_3d"] = results["gt_labels_3d"][keep]
        return results


@TRANSFORMS.register_module()
class ObjectNameFilter(BaseTransform):
    """Keep boxes whose label is one of the first ``len(classes)`` class indices (as mmdet3d: ``classes`` lists
    the dataset's classes to train on, in the dataset's order), dropping ignored (-1) labels too."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = tuple(classes)

    def transform(self, results: dict) -> dict:
        labels = results["gt_labels_3d"]
        keep = (labels >= 0) & (labels < len(self.classes))
        results["gt_bboxes_3d"] = results["gt_bboxes_3d"][keep]
        results["gt_labels_3d"] = labels[keep]
        return results


@TRANSFORMS.register_module()
class PointShuffle(BaseTransform):
    """Shuffle the order of the points (hard voxelisation keeps the first points of a voxel)."""

    def transform(self, results: dict) -> dict:
        results["points"] = results["points"][augmentation_rng().permutation(len(results["points"]))]
        return results
