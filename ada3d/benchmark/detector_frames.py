"""Detector inputs for benchmarks: batches as a model's data preprocessor takes them, with their ground truth.

Two sources: a dataset split built from a config's dataloader (e.g. the synthetic val split), and KITTI
frames read straight from a ``training/{velodyne,label_2,calib}`` tree (the real scans in demo/data/kitti).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from mmengine.structures import InstanceData

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.structures import Det3DDataSample, camera_to_lidar_boxes


@dataclass(frozen=True)
class DetectorFrame:
    """One batch of one or more samples.

    Attributes:
        name: the sample ids, joined by ``+``.
        batch: ``dict(inputs=dict(points=[Tensor [N_i, C]]), data_samples=[Det3DDataSample])``, the
            collated form the data preprocessor and ``model.test_step`` take.
        gt_boxes: per sample, ``[M_i, 7]`` float32 LiDAR boxes (x, y, z, l, w, h, yaw; z the bottom centre) of
            the model's classes.
        gt_labels: per sample, ``[M_i]`` long: each box's class, an index into the model's class names.
    """

    name: str
    batch: dict
    gt_boxes: list[torch.Tensor]
    gt_labels: list[torch.Tensor]


def kitti_frames(
    root: str | Path, classes: Sequence[str], frame_ids: Sequence[str] | None = None
) -> list[DetectorFrame]:
    """Frames of a KITTI ``root`` with ``training/velodyne/*.bin``, ``label_2`` and ``calib``, one per batch.

    Args:
        root: the dataset root.
        classes: the model's class names, in label order; other labelled objects are left out.
        frame_ids: ids such as ``'000008'`` (default: every scan in ``training/velodyne``).

    Raises:
        FileNotFoundError: for a missing scan, label or calibration file.
    """
    training = Path(root) / "training"
    if frame_ids is None:
        frame_ids = sorted(path.stem for path in (training / "velodyne").glob("*.bin"))
        if not frame_ids:
            raise FileNotFoundError(f"no scans (*.bin) in {training / 'velodyne'}")
    frames = []
    for frame_id in frame_ids:
        paths = {kind: training / kind / f"{frame_id}.{ext}" for kind, ext in
                 (("velodyne", "bin"), ("label_2", "txt"), ("calib", "txt"))}
        for path in paths.values():
            if not path.is_file():
                raise FileNotFoundError(f"KITTI frame {frame_id}: {path} not found")
        points = torch.from_numpy(load_points(paths["velodyne"]))
        objects = [obj for obj in read_label_file(paths["label_2"]) if obj.name in classes]
        camera_boxes = np.stack([obj.camera_box for obj in objects]) if objects else np.zeros((0, 7))
        boxes = torch.from_numpy(camera_to_lidar_boxes(camera_boxes, read_calib_file(paths["calib"]).lidar2cam))
        sample = Det3DDataSample(metainfo=dict(sample_idx=frame_id))
        labels = torch.tensor([list(classes).index(obj.name) for obj in objects], dtype=torch.long)
        sample.gt_instances_3d = InstanceData(bboxes_3d=boxes.float(), labels_3d=labels)
        batch = dict(inputs=dict(points=[points]), data_samples=[sample])
        frames.append(DetectorFrame(frame_id, batch, [boxes.float()], [labels]))
    return frames


def dataloader_frames(dataloader_cfg: dict, limit: int | None = None) -> list[DetectorFrame]:
    """The first ``limit`` batches (default: all) of a dataloader config such as ``cfg.val_dataloader``.

    The loader is built in the main process (no workers). Ground truth comes from each data sample's
    ``eval_ann_info`` (``gt_bboxes_3d``, ``gt_labels_3d``; test-mode datasets) or else its ``gt_instances_3d``.
    """
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import ada3d.datasets  # noqa: F401  (registers the datasets and transforms)

    init_default_scope("ada3d")
    loader_cfg = dict(dataloader_cfg, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    frames = []
    for batch in itertools.islice(loader, limit):
        samples = batch["data_samples"]
        name = "+".join(str(sample.metainfo.get("sample_idx", "?")) for sample in samples)
        boxes, labels = zip(*(_ground_truth(sample) for sample in samples))
        frames.append(DetectorFrame(name, batch, list(boxes), list(labels)))
    return frames


def _ground_truth(sample: Det3DDataSample) -> tuple[torch.Tensor, torch.Tensor]:
    """``[M, 7]`` float32 boxes and ``[M]`` long labels of a sample (see :func:`dataloader_frames`)."""
    annotations = sample.get("eval_ann_info")
    if annotations is not None and "gt_bboxes_3d" in annotations:
        boxes, labels = annotations["gt_bboxes_3d"], annotations["gt_labels_3d"]
    else:
        instances = sample.gt_instances_3d
        boxes, labels = instances.get("bboxes_3d", torch.zeros(0, 7)), instances.get("labels_3d", torch.zeros(0))
    boxes = torch.as_tensor(np.asarray(boxes), dtype=torch.float32).reshape(-1, 7)
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1)
    if len(labels) != len(boxes):
        raise ValueError(f"sample {sample.metainfo.get('sample_idx', '?')}: {len(boxes)} ground-truth boxes but "
                         f"{len(labels)} labels")
    return boxes, labels
