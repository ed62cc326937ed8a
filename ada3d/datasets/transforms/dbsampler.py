"""Ground-truth sampling ("copy-paste") augmentation from the GT database written by tools/create_data.py."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from mmengine.logging import print_log

from ada3d.datasets.transforms.base import BaseTransform, augmentation_rng, check_local_backend
from ada3d.datasets.transforms.box_collision import bev_corners, bev_overlaps
from ada3d.registry import TRANSFORMS
from ada3d.structures import points_in_boxes


class _ClassSampler:
    """Draws database entries of one class without repetition until all were drawn, then reshuffles."""

    def __init__(self, entries: list[dict]) -> None:
        self.entries = entries
        self._order = np.arange(0)
        self._next = 0

    def sample(self, count: int) -> list[dict]:
        drawn: list[dict] = []
        while self.entries and len(drawn) < count:
            if self._next == len(self._order):
                self._order, self._next = augmentation_rng().permutation(len(self.entries)), 0
            take = self._order[self._next : self._next + count - len(drawn)]
            drawn += [self.entries[i] for i in take]
            self._next += len(take)
        return drawn


@TRANSFORMS.register_module()
class DataBaseSampler:
    """Samples database objects that fit into a scene (mmdet3d's ``DataBaseSampler``).

    Args:
        info_path: the ``*_dbinfos_train.pkl`` file.
        data_root: root the database paths are relative to.
        rate: fraction of the missing objects to sample (``round(rate * (group size - objects in the scene))``).
        prepare: database filters, ``filter_by_difficulty=[levels to drop]`` (KITTI difficulty, e.g. ``[-1]``)
            and ``filter_by_min_points=dict(Car=5, ...)`` (drop objects with fewer points).
        sample_groups: objects per class a scene is filled up to, e.g. ``dict(Car=15, Pedestrian=10)``.
        classes: the dataset's classes; sampled objects get their index as label.
        points_loader: :class:`LoadPointsFromFile` config for the object files (default 4 float32 columns, all
            used); empty object files are accepted.
        backend_args: mmdet3d's file-backend settings; only local files are read, so it must be None.
    """

    PREPARE_KEYS = ("filter_by_difficulty", "filter_by_min_points")

    def __init__(
        self,
        info_path: str,
        data_root: str,
        rate: float,
        prepare: dict,
        sample_groups: dict,
        classes: Sequence[str],
        points_loader: dict | None = None,
        backend_args: dict | None = None,
    ) -> None:
        check_local_backend(backend_args)
        self.info_path = Path(info_path)
        self.data_root = Path(data_root)
        self.rate = rate
        self.classes = tuple(classes)
        if unknown := set(prepare) - set(self.PREPARE_KEYS):
            raise ValueError(f"prepare has unknown filters {sorted(unknown)}; known: {self.PREPARE_KEYS}")
        if unknown := set(sample_groups) - set(self.classes):
            raise ValueError(f"sample_groups names classes {sorted(unknown)} that are not in classes {self.classes}")
        if not self.info_path.is_file():
            raise FileNotFoundError(
                f"GT database info {self.info_path} not found: write it with tools/create_data.py kitti --root ROOT"
            )
        with open(self.info_path, "rb") as file:
            db_infos: dict[str, list[dict]] = pickle.load(file)
        if missing := [name for name in sample_groups if name not in db_infos]:
            raise ValueError(f"{self.info_path} has no objects of {missing} (it has {sorted(db_infos)})")

        removed_difficulty = set(prepare.get("filter_by_difficulty", ()))
        min_points = prepare.get("filter_by_min_points", {})
        self.sample_groups = {name: int(count) for name, count in sample_groups.items()}
        self.samplers = {}
        for name in self.sample_groups:
            fewest_points = min_points.get(name, 0)
            kept = [
                entry for entry in db_infos[name]
                if entry["difficulty"] not in removed_difficulty and entry["num_points_in_gt"] >= fewest_points
            ]
            print_log(f"GT database {name}: {len(kept)} of {len(db_infos[name])} objects after filtering", "current")
            self.samplers[name] = _ClassSampler(kept)

        loader = dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4)
        loader.update(points_loader or {}, allow_empty=True)
        self.points_loader = TRANSFORMS.build(loader)

    def sample_all(self, gt_bboxes: np.ndarray, gt_labels: np.ndarray) -> dict | None:
        """Objects that collide with neither ``gt_bboxes`` ``[M, 7]`` nor each other (BEV), class by class.

        Returns:
            ``dict(gt_bboxes_3d=[K, 7] float32, gt_labels_3d=[K] int64, points=[P, C] float32)`` in LiDAR
            coordinates, or None when nothing was sampled.
        """
        placed = np.asarray(gt_bboxes, dtype=np.float32).reshape(-1, 7)
        chosen: list[tuple[str, dict]] = []
        for name, group_size in self.sample_groups.items():
            label = self.classes.index(name)
            count = int(np.round(self.rate * (group_size - int(np.sum(gt_labels == label)))))
            if count <= 0:
                continue
            candidates = self.samplers[name].sample(count)
            if not candidates:
                continue
            candidate_boxes = np.stack([entry["box3d_lidar"] for entry in candidates]).astype(np.float32)
            accepted = _non_colliding(placed, candidate_boxes)
            chosen += [(name, candidates[i]) for i in accepted]
            placed = np.concatenate([placed, candidate_boxes[accepted]])
        if not chosen:
            return None
        boxes = np.stack([entry["box3d_lidar"] for _, entry in chosen]).astype(np.float32)
        points = [
            self.points_loader(dict(lidar_points=dict(lidar_path=self.data_root / entry["path"])))["points"]
            for _, entry in chosen
        ]
        for object_points, box in zip(points, boxes):
            object_points[:, :3] += box[:3]
        return dict(
            gt_bboxes_3d=boxes,
            gt_labels_3d=np.array([self.classes.index(name) for name, _ in chosen], dtype=np.int64),
            points=np.concatenate(points),
        )


def _non_colliding(placed: np.ndarray, candidates: np.ndarray) -> list[int]:
    """Indices of ``candidates`` to paste: a candidate is dropped when it overlaps a placed box or a candidate not
    dropped before it (mmdet3d's order: the earlier of two overlapping candidates is dropped)."""
    corners = bev_corners(np.concatenate([placed, candidates]))
    collides = bev_overlaps(corners, corners)
    np.fill_diagonal(collides, False)
    accepted = []
    for i in range(len(placed), len(corners)):
        if collides[i].any():
            collides[i] = False
            collides[:, i] = False
        else:
            accepted.append(i - len(placed))
    return accepted


@TRANSFORMS.register_module()
class ObjectSample(BaseTransform):
    """Paste database objects (boxes and their points) into the scene; scene points inside pasted boxes are removed.

    Args:
        db_sampler: :class:`DataBaseSampler` arguments (``type`` optional).
    """

    def __init__(self, db_sampler: dict) -> None:
        self.db_sampler = TRANSFORMS.build(dict(type="DataBaseSampler") | dict(db_sampler))

    def transform(self, results: dict) -> dict:
        boxes, labels, points = results["gt_bboxes_3d"], results["gt_labels_3d"], results["points"]
        sampled = self.db_sampler.sample_all(boxes, labels)
        if sampled is None:
            return results
        if sampled["points"].shape[1] != points.shape[1]:
            raise ValueError(
                f"GT database points have {sampled['points'].shape[1]} columns but the scene has {points.shape[1]}: "
                "give the db_sampler a points_loader with the use_dim of the scene's LoadPointsFromFile"
            )
        outside = ~points_in_boxes(points, sampled["gt_bboxes_3d"]).any(axis=1)
        results["points"] = np.concatenate([sampled["points"], points[outside]])
        results["gt_bboxes_3d"] = np.concatenate([boxes, sampled["gt_bboxes_3d"]]).astype(np.float32)
        results["gt_labels_3d"] = np.concatenate([labels, sampled["gt_labels_3d"]])
        return results
