"""KITTI 3D object detection as an mmengine dataset over mmdet3d-v2 info files (tools/create_data.py kitti)."""

from __future__ import annotations

import os.path as osp
from collections.abc import Callable
from pathlib import Path

import numpy as np
from mmengine.dataset import BaseDataset

from ada3d.datasets.kitti_infos import KITTI_CLASSES, lidar_boxes_of
from ada3d.registry import DATASETS, TRANSFORMS

# per-instance info fields carried into ann_info: info key -> (ann_info key, dtype, trailing shape)
_ANNOTATION_FIELDS = {
    "bbox": ("gt_bboxes", np.float32, (4,)),
    "center_2d": ("centers_2d", np.float32, (2,)),
    "depth": ("depths", np.float32, ()),
    "num_lidar_pts": ("num_lidar_pts", np.int64, ()),
    "difficulty": ("difficulty", np.int64, ()),
    "truncated": ("truncated", np.float32, ()),
    "occluded": ("occluded", np.int64, ()),
    "alpha": ("alpha", np.float32, ()),
    "score": ("score", np.float32, ()),
    "index": ("index", np.int64, ()),
    "group_id": ("group_id", np.int64, ()),
}


@DATASETS.register_module()
class KittiDataset(BaseDataset):
    """KITTI frames with their LiDAR ground truth.

    Args:
        data_root: the dataset root (``data/kitti``).
        ann_file: an info file written by ``tools/create_data.py`` (``kitti_infos_train.pkl``), relative to
            ``data_root``.
        pipeline: transforms (configs or callables), built from :data:`ada3d.registry.TRANSFORMS`.
        metainfo: ``dict(classes=...)``, the classes to detect (default Pedestrian, Cyclist, Car); labels index
            this tuple. Objects of other classes (Van, DontCare, ...) get label -1 and are dropped from the targets.
        data_prefix: folders of the point clouds (``pts``) and images (``img``), relative to ``data_root``.
        modality: mmdet3d's ``dict(use_lidar=True, use_camera=False)``; only LiDAR input is supported.
        test_mode: no training targets (``ann_info``); samples are never skipped.
        filter_empty_gt: in training, skip samples without targets (before or after the pipeline) and draw another.
        load_eval_anns: in test mode, add the targets as ``eval_ann_info`` (packed into the data sample).
        **kwargs: other :class:`mmengine.dataset.BaseDataset` arguments (``indices``, ``serialize_data``,
            ``lazy_init``, ``max_refetch``).

    Each data info (the pipeline's input) holds ``sample_idx`` (position in the dataset, mmengine's), ``frame_idx``
    (the KITTI frame number), ``lidar_points`` / ``lidar_path`` / ``num_pts_feats``, ``img_path``, ``img_shape``
    ``(height, width)``, ``lidar2cam``, ``cam2img``, ``lidar2img`` (4x4 float64), the info's ``images`` and
    ``instances``, and ``ann_info`` (training) or ``eval_ann_info`` (test mode) from :meth:`parse_ann_info`.
    """

    METAINFO = dict(classes=("Pedestrian", "Cyclist", "Car"))

    def __init__(
        self,
        data_root: str,
        ann_file: str,
        pipeline: list[dict | Callable] | None = None,
        metainfo: dict | None = None,
        data_prefix: dict | None = None,
        modality: dict | None = None,
        test_mode: bool = False,
        filter_empty_gt: bool = True,
        load_eval_anns: bool = True,
        box_type_3d: str = "LiDAR",
        **kwargs,
    ) -> None:
        if box_type_3d.lower() != "lidar":  # mmdet3d's argument: boxes here are always LiDAR boxes
            raise ValueError(f"KittiDataset yields LiDAR boxes (box_type_3d='LiDAR'), got box_type_3d={box_type_3d!r}")
        if modality is not None and (not modality.get("use_lidar", True) or modality.get("use_camera", False)):
            raise ValueError(f"KittiDataset reads LiDAR only: modality=dict(use_lidar=True, use_camera=False), got "
                             f"{modality}")
        self.filter_empty_gt = filter_empty_gt
        self.load_eval_anns = load_eval_anns
        self._label_mapping: dict[int, int] | None = None
        prefix = dict(pts="training/velodyne_reduced", img="training/image_2") | dict(data_prefix or {})
        steps = [TRANSFORMS.build(step) if isinstance(step, dict) else step for step in pipeline or []]
        super().__init__(ann_file=ann_file, metainfo=metainfo, data_root=data_root, data_prefix=prefix,
                         pipeline=steps, test_mode=test_mode, **kwargs)

    def load_data_list(self) -> list[dict]:
        if not Path(self.ann_file).is_file():
            raise FileNotFoundError(
                f"info file {self.ann_file} not found: write it with tools/create_data.py kitti --root {self.data_root}"
            )
        return super().load_data_list()

    @property
    def label_mapping(self) -> dict[int, int]:
        """Info label (index of the info file's ``categories``) -> label of this dataset's classes (-1: ignored)."""
        if self._label_mapping is None:
            categories = self._metainfo.get("categories") or {name: i for i, name in enumerate(KITTI_CLASSES)}
            classes = self._metainfo["classes"]
            named = {label: name for name, label in categories.items() if label >= 0}
            self._label_mapping = {
                label: classes.index(name) if name in classes else -1 for label, name in named.items()
            }
        return self._label_mapping

    def parse_data_info(self, info: dict) -> dict:
        lidar = info["lidar_points"]
        camera = info["images"]["CAM2"]
        lidar_path = osp.join(self.data_prefix.get("pts", ""), lidar["lidar_path"])
        if "height" not in camera or "width" not in camera:
            raise ValueError(f"{self.ann_file}: frame {info['sample_idx']} lacks images.CAM2.height/width")
        data = dict(
            frame_idx=info["sample_idx"],
            lidar_points=dict(lidar, lidar_path=lidar_path),
            lidar_path=lidar_path,
            num_pts_feats=lidar["num_pts_feats"],
            img_path=osp.join(self.data_prefix.get("img", ""), camera["img_path"]),
            img_shape=(camera["height"], camera["width"]),
            lidar2cam=np.array(camera["lidar2cam"], dtype=np.float64),
            cam2img=np.array(camera["cam2img"], dtype=np.float64),
            lidar2img=np.array(camera["lidar2img"], dtype=np.float64),
            images=info["images"],
            instances=info["instances"],
        )
        if not self.test_mode:
            data["ann_info"] = self.parse_ann_info(info)
        elif self.load_eval_anns:
            data["eval_ann_info"] = self.parse_ann_info(info)
        return data

    def parse_ann_info(self, info: dict) -> dict:
        """The targets of an info, objects of this dataset's classes only.

        Returns:
            ``gt_bboxes_3d`` float32 ``[M, 7]`` LiDAR boxes (x, y, z, l, w, h, yaw; z the bottom centre),
            ``gt_labels_3d`` int64 ``[M]``, ``gt_bboxes_labels`` (the same labels), and per object
            ``gt_bboxes [M, 4]``, ``centers_2d [M, 2]``, ``depths``, ``num_lidar_pts``, ``difficulty``,
            ``truncated``, ``occluded``, ``alpha``, ``score``, ``index``, ``group_id``.
        """
        instances = info["instances"]
        boxes, info_labels = lidar_boxes_of(info)
        labels = np.array([self.label_mapping.get(label, -1) for label in info_labels], dtype=np.int64)
        keep = labels >= 0
        annotations = dict(gt_bboxes_3d=boxes[keep], gt_labels_3d=labels[keep], gt_bboxes_labels=labels[keep])
        for key, (name, dtype, shape) in _ANNOTATION_FIELDS.items():
            values = np.array([instance[key] for instance in instances], dtype=dtype).reshape(-1, *shape)
            annotations[name] = values[keep]
        return annotations

    def prepare_data(self, idx: int) -> dict | None:
        """The sample after the pipeline; in training with ``filter_empty_gt``, None (draw another) when it has
        no targets before or after the pipeline."""
        data_info = self.get_data_info(idx)
        skip_empty = not self.test_mode and self.filter_empty_gt
        if skip_empty and not len(data_info["ann_info"]["gt_labels_3d"]):
            return None
        example = self.pipeline(data_info)
        if skip_empty and (example is None or not _num_targets(example)):
            return None
        return example


def _num_targets(example: dict) -> int:
    if "data_samples" in example:
        return len(example["data_samples"].gt_instances_3d)
    return len(example["gt_labels_3d"])
