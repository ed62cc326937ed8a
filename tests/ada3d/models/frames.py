"""Real KITTI frames from the repository's demo data, as detector inputs and ground truth."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from mmengine.structures import InstanceData

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.ops import hard_voxelize
from ada3d.structures import Det3DDataSample, camera_to_lidar_boxes
from tests.conftest import KITTI_DEMO_ROOT

CLASSES = ("Pedestrian", "Cyclist", "Car")
POINT_CLOUD_RANGE = (0, -40, -3, 70.4, 40, 1)


def kitti_frame(frame_id: str) -> tuple[torch.Tensor, Det3DDataSample]:
    """Points ``[N, 4]`` and a data sample with the LiDAR ground truth of the 3 classes."""
    root = Path(KITTI_DEMO_ROOT) / "training"
    points = torch.from_numpy(load_points(root / "velodyne" / f"{frame_id}.bin"))
    calib = read_calib_file(root / "calib" / f"{frame_id}.txt")
    objects = [obj for obj in read_label_file(root / "label_2" / f"{frame_id}.txt") if obj.name in CLASSES]
    camera_boxes = np.stack([obj.camera_box for obj in objects]) if objects else np.zeros((0, 7))
    boxes = camera_to_lidar_boxes(camera_boxes, calib.lidar2cam)
    sample = Det3DDataSample(metainfo=dict(sample_idx=frame_id))
    sample.gt_instances_3d = InstanceData(
        bboxes_3d=torch.from_numpy(boxes).float(),
        labels_3d=torch.tensor([CLASSES.index(obj.name) for obj in objects], dtype=torch.long),
    )
    return points, sample


def voxel_batch(
    points: Sequence[torch.Tensor], voxel_size: Sequence[float], max_points: int = 5, max_voxels: int = 40000
) -> dict:
    """``inputs`` of the detector, as the data preprocessor builds them, for a batch of point clouds."""
    voxels, coors, num_points = [], [], []
    for b, cloud in enumerate(points):
        result = hard_voxelize(cloud, voxel_size, POINT_CLOUD_RANGE, max_points, max_voxels)
        voxels.append(result.points)
        num_points.append(result.num_points)
        coors.append(torch.nn.functional.pad(result.coords, (1, 0), value=b))
    return dict(
        points=list(points),
        voxels=dict(voxels=torch.cat(voxels), num_points=torch.cat(num_points), coors=torch.cat(coors),
                    batch_size=len(points)),
    )
