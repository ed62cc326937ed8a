"""``KittiMetric``: the official KITTI evaluation of a detector's LiDAR-box predictions, for mmengine loops.

Ground truth and calibration come from an mmdetection3d v2-layout KITTI info file (``ann_file``):
``metainfo['categories']`` maps class names to labels, and each ``data_list`` entry has ``sample_idx``,
``images['CAM2']`` with ``lidar2cam`` (4x4, LiDAR to rectified camera), ``cam2img`` (P2, 3x4 or 4x4),
``height`` and ``width``, and ``instances`` with ``bbox`` (2D, pixels), ``bbox_label`` (-1 for DontCare
regions, which mmdetection3d's converter keeps), ``bbox_3d`` (camera x, y, z, l, h, w, ry), ``truncated``,
``occluded`` and ``alpha``.

Predictions (``pred_instances_3d``: ``bboxes_3d [K, 7]`` LiDAR, ``scores_3d``, ``labels_3d`` indexing the
dataset's classes) become KITTI camera objects: a box is kept when its bottom centre lies inside
``pcd_limit_range`` and its projection is visible in the image (all corners in front of the camera, overlapping
the image); its 2D box is the bounding box of the projected corners clipped to the image (to width - 1 and
height - 1 like the KITTI labels; mmdetection3d clips to width / height); truncation and occlusion are 0;
``alpha = -arctan2(-y, x) + ry`` from the LiDAR centre (mmdetection3d's convention), wrapped to [-pi, pi).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import mmengine
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement
from tqdm import tqdm

from ada3d.datasets.kitti_files import KittiObject, write_label_file
from ada3d.evaluation.kitti_annos import anno_to_objects, objects_to_anno
from ada3d.evaluation.kitti_eval import EVAL_TYPES, MIN_OVERLAPS, kitti_eval
from ada3d.registry import METRICS
from ada3d.structures import lidar_boxes_to_image_boxes, lidar_to_camera_boxes, limit_period

DEFAULT_PCD_LIMIT_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 0.0)  # x, y, z min then max (metres), mmdet3d's
DONT_CARE_LABEL = -1


def _numpy(value, dtype) -> np.ndarray:
    value = getattr(value, "tensor", value)  # box classes that wrap a tensor
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


def _pad4(matrix) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    padded = np.eye(4)
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded


def _frame_calibration(info: dict, where: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """``(lidar2cam 4x4, cam2img 4x4, (height, width))`` of the left colour camera of an info entry."""
    try:
        camera = info["images"]["CAM2"]
        return _pad4(camera["lidar2cam"]), _pad4(camera["cam2img"]), (int(camera["height"]), int(camera["width"]))
    except KeyError as error:
        raise ValueError(f"{where}: images.CAM2 lacks {error}") from None


def ground_truth_objects(info: dict, label_names: dict[int, str], where: str) -> list[KittiObject]:
    """The KITTI objects of an info entry's ``instances`` (bbox_label -1: DontCare)."""
    objects = []
    for number, instance in enumerate(info.get("instances", [])):
        try:
            label = int(instance["bbox_label"])
            box = np.asarray(instance["bbox_3d"], dtype=np.float64)
            objects.append(KittiObject(
                name="DontCare" if label == DONT_CARE_LABEL else label_names[label],
                truncated=float(instance["truncated"]), occluded=int(instance["occluded"]),
                alpha=float(instance["alpha"]), bbox=np.asarray(instance["bbox"], dtype=np.float64),
                dimensions=box[3:6], location=box[:3], rotation_y=float(box[6]),
            ))
        except KeyError as error:
            raise ValueError(f"{where}: instance {number} lacks {error} (or its label is not in the categories)") \
                from None
    return objects


@METRICS.register_module()
class KittiMetric(BaseMetric):
    """KITTI 2D / BEV / 3D / AOS average precision (see :mod:`ada3d.evaluation.kitti_eval`).

    Args:
        ann_file: the KITTI info ``.pkl`` (mmdetection3d v2 layout) with ground truth and calibration.
        metric: subset of 'bbox', 'bev', '3d', 'aos'; all four by default ('aos' needs 'bbox').
        classes: class names that ``labels_3d`` index; by default the dataset's ``metainfo['classes']``. Classes
            outside KITTI's evaluated set (Car, Pedestrian, Cyclist, Van, Person_sitting) are skipped, with a
            warning.
        pcd_limit_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]`` (LiDAR, metres) outside which
            predicted bottom centres are dropped; mmdetection3d's KITTI range by default.
        pklfile_prefix: if given, the predictions in KITTI camera format are dumped to ``{prefix}.pkl``.
        submission_prefix: if given, a folder that receives one KITTI result file per frame
            (``{sample_idx:06d}.txt``), the format of the official benchmark's submissions.
        format_only: only write the files above (test split without labels); returns no metrics.
        collect_device, prefix: as in mmengine's ``BaseMetric``.
    """

    default_prefix = "Kitti metric"

    def __init__(
        self,
        ann_file: str,
        metric: str | Sequence[str] | None = None,
        classes: Sequence[str] | None = None,
        pcd_limit_range: Sequence[float] | None = None,
        pklfile_prefix: str | None = None,
        submission_prefix: str | None = None,
        format_only: bool = False,
        collect_device: str = "cpu",
        prefix: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = str(ann_file)
        metrics = list(EVAL_TYPES) if metric is None else [metric] if isinstance(metric, str) else list(metric)
        unknown = sorted(set(metrics) - set(EVAL_TYPES))
        if unknown or not metrics:
            raise ValueError(f"KittiMetric: metric must be among {EVAL_TYPES}, got {metrics}")
        if "aos" in metrics and "bbox" not in metrics:
            raise ValueError("KittiMetric: 'aos' is measured on 2D matches and needs 'bbox' in metric")
        self.metrics = [name for name in EVAL_TYPES if name in metrics]
        self.classes = None if classes is None else list(classes)
        limit = DEFAULT_PCD_LIMIT_RANGE if pcd_limit_range is None else tuple(pcd_limit_range)
        if len(limit) != 6:
            raise ValueError(f"KittiMetric: pcd_limit_range needs 6 numbers, got {limit}")
        self.pcd_limit_range = np.asarray(limit, dtype=np.float64)
        if format_only and pklfile_prefix is None and submission_prefix is None:
            raise ValueError("KittiMetric: format_only needs submission_prefix or pklfile_prefix to write to")
        self.pklfile_prefix = pklfile_prefix
        self.submission_prefix = submission_prefix
        self.format_only = format_only

    def process(self, data_batch, data_samples: Sequence[dict | BaseDataElement]) -> None:
        """Keep each sample's ``sample_idx`` and predicted LiDAR boxes, scores and labels (as numpy, on CPU)."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            if "pred_instances_3d" not in sample or "sample_idx" not in sample:
                raise ValueError(f"KittiMetric: a data sample needs pred_instances_3d and sample_idx, got keys "
                                 f"{sorted(sample)}")
            pred = sample["pred_instances_3d"]
            if isinstance(pred, BaseDataElement):
                pred = pred.to_dict()
            self.results.append(dict(
                # KittiDataset keeps the KITTI frame number (the info's sample_idx) as frame_idx
                sample_idx=sample.get("frame_idx", sample["sample_idx"]),
                bboxes_3d=_numpy(pred["bboxes_3d"], np.float64).reshape(-1, 7),
                scores_3d=_numpy(pred["scores_3d"], np.float64).reshape(-1),
                labels_3d=_numpy(pred["labels_3d"], np.int64).reshape(-1),
            ))

    def compute_metrics(self, results: list[dict]) -> dict[str, float]:
        """Convert predictions to KITTI camera objects, write the requested files, and evaluate."""
        infos, label_names = self._load_ann_file()
        class_names = self._class_names()
        frames = []
        for result in tqdm(results, desc="KITTI: predictions to camera boxes", unit="frame", delay=1.0):
            idx = result["sample_idx"]
            if idx not in infos:
                raise ValueError(f"{self.ann_file}: no entry with sample_idx {idx!r}")
            frames.append((idx, self.prediction_anno(result, infos[idx], class_names)))
        self._write_outputs(frames)
        if self.format_only:
            return {}
        gt_annos = [
            objects_to_anno(ground_truth_objects(infos[idx], label_names, f"{self.ann_file} sample {idx}"))
            for idx, _ in frames
        ]
        evaluated = [name for name in class_names if name.lower() in {key.lower() for key in MIN_OVERLAPS}]
        skipped = [name for name in class_names if name not in evaluated]
        if skipped:
            print_log(f"KittiMetric: KITTI does not evaluate {skipped}; evaluating {evaluated}", logger="current",
                      level=logging.WARNING)
        if not evaluated:
            raise ValueError(f"KittiMetric: none of the classes {class_names} is evaluated by KITTI")
        table, results = kitti_eval(gt_annos, [anno for _, anno in frames], evaluated, self.metrics)
        print_log("KITTI evaluation:\n" + table, logger="current")
        return results

    def prediction_anno(self, result: dict, info: dict, class_names: Sequence[str]) -> dict[str, np.ndarray]:
        """One frame's predictions as a KITTI annotation (camera boxes, 2D boxes, alpha; see the module doc)."""
        lidar2cam, cam2img, image_shape = _frame_calibration(info, f"{self.ann_file} sample {result['sample_idx']}")
        boxes, labels = result["bboxes_3d"], result["labels_3d"]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(class_names)):
            raise ValueError(f"KittiMetric: sample {result['sample_idx']}: labels_3d {labels.min()}..{labels.max()} "
                             f"outside the {len(class_names)} classes {list(class_names)}")
        boxes_2d, visible = lidar_boxes_to_image_boxes(boxes, lidar2cam, cam2img, image_shape)
        centres = boxes[:, :3]
        in_range = np.all((centres > self.pcd_limit_range[:3]) & (centres < self.pcd_limit_range[3:]), axis=1)
        keep = visible & in_range
        boxes, camera = boxes[keep], lidar_to_camera_boxes(boxes[keep], lidar2cam)
        return {
            "name": np.asarray(class_names, dtype=str)[labels[keep]] if keep.any() else np.zeros(0, dtype=str),
            "truncated": np.zeros(keep.sum()),
            "occluded": np.zeros(keep.sum(), dtype=np.int64),
            "alpha": limit_period(-np.arctan2(-boxes[:, 1], boxes[:, 0]) + camera[:, 6]),
            "bbox": boxes_2d[keep],
            "dimensions": camera[:, 3:6],
            "location": camera[:, :3],
            "rotation_y": camera[:, 6],
            "score": result["scores_3d"][keep],
        }

    def _class_names(self) -> list[str]:
        if self.classes is not None:
            return self.classes
        meta = self.dataset_meta or {}
        if "classes" not in meta:
            raise ValueError("KittiMetric: pass classes=... or run with a dataset whose metainfo has 'classes'")
        return list(meta["classes"])

    def _load_ann_file(self) -> tuple[dict, dict[int, str]]:
        """``({sample_idx: info}, {label: class name})`` of the info file."""
        if not Path(self.ann_file).is_file():
            raise FileNotFoundError(f"KittiMetric: ann_file not found: {self.ann_file}")
        content = mmengine.load(self.ann_file)
        if not isinstance(content, dict) or "data_list" not in content or "categories" not in content.get(
            "metainfo", {}
        ):
            raise ValueError(f"{self.ann_file}: not a v2-layout info file (needs data_list and metainfo.categories)")
        label_names = {int(label): name for name, label in content["metainfo"]["categories"].items() if label >= 0}
        return {info["sample_idx"]: info for info in content["data_list"]}, label_names

    def _write_outputs(self, frames: list[tuple[object, dict]]) -> None:
        if self.submission_prefix is not None:
            folder = Path(self.submission_prefix)
            folder.mkdir(parents=True, exist_ok=True)
            for idx, anno in frames:
                name = f"{idx:06d}.txt" if isinstance(idx, (int, np.integer)) else f"{idx}.txt"
                write_label_file(folder / name, anno_to_objects(anno))
            print_log(f"KittiMetric: KITTI result files of {len(frames)} frames written to {folder}", logger="current")
        if self.pklfile_prefix is not None:
            path = self.pklfile_prefix if self.pklfile_prefix.endswith(".pkl") else f"{self.pklfile_prefix}.pkl"
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            mmengine.dump([dict(anno, sample_idx=idx) for idx, anno in frames], path)
            print_log(f"KittiMetric: predictions in KITTI format written to {path}", logger="current")
