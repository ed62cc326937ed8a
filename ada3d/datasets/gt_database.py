"""The ground-truth database for GT-sampling augmentation (mmdet3d's ``kitti_gt_database`` layout).

For every labelled object (DontCare excluded) of the training infos, its points (of the camera-FOV scan) are
written to ``<prefix>_gt_database/<sample_idx>_<class>_<i>.bin`` relative to the box's bottom centre, float32
with the scan's columns; ``<prefix>_dbinfos_train.pkl`` maps each class name to a list of dicts::

    name              class name
    path              '<prefix>_gt_database/<file>', relative to the data root
    image_idx         the frame's sample_idx
    gt_idx            i, the object's index among the frame's non-DontCare objects
    box3d_lidar       float32 [7] LiDAR box (x, y, z, l, w, h, yaw), z the bottom centre
    num_points_in_gt  points written for it
    difficulty        KITTI difficulty (0 easy, 1 moderate, 2 hard, -1 none)
    group_id          running id over the database (one object per group)
    score             the label's score column (0 for ground truth)
"""

from __future__ import annotations

import pickle
from pathlib import Path

from tqdm import tqdm

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_infos import KITTI_CLASSES, lidar_boxes_of
from ada3d.structures import points_in_boxes


def create_gt_database(
    data_root: str | Path,
    infos: list[dict],
    info_prefix: str = "kitti",
    points_dir: str = "training/velodyne_reduced",
) -> dict[str, list[dict]]:
    """Write the GT database of ``infos`` under ``data_root``; returns the db infos (also pickled).

    Args:
        data_root: the dataset root.
        infos: info dicts of the training split (``kitti_infos_train.pkl``'s ``data_list``).
        info_prefix: file-name prefix (``kitti`` -> ``kitti_gt_database/``, ``kitti_dbinfos_train.pkl``).
        points_dir: folder (relative to ``data_root``) of the point files named in the infos.
    """
    data_root = Path(data_root)
    database_dir = data_root / f"{info_prefix}_gt_database"
    database_dir.mkdir(parents=True, exist_ok=True)
    db_infos: dict[str, list[dict]] = {}
    group_id = 0
    for info in tqdm(infos, desc=f"{info_prefix} GT database", unit="frame"):
        lidar = info["lidar_points"]
        points = load_points(data_root / points_dir / lidar["lidar_path"], lidar["num_pts_feats"])
        boxes, labels = lidar_boxes_of(info)
        labelled = labels >= 0
        instances = [inst for inst, keep in zip(info["instances"], labelled) if keep]
        boxes = boxes[labelled]
        inside = points_in_boxes(points, boxes)
        for i, (instance, box) in enumerate(zip(instances, boxes)):
            name = KITTI_CLASSES[instance["bbox_label_3d"]]
            object_points = points[inside[:, i]].copy()
            object_points[:, :3] -= box[:3]
            relative_path = f"{info_prefix}_gt_database/{info['sample_idx']}_{name}_{i}.bin"
            object_points.tofile(data_root / relative_path)
            db_infos.setdefault(name, []).append(
                dict(
                    name=name,
                    path=relative_path,
                    image_idx=info["sample_idx"],
                    gt_idx=i,
                    box3d_lidar=box,
                    num_points_in_gt=len(object_points),
                    difficulty=instance["difficulty"],
                    group_id=group_id,
                    score=instance["score"],
                )
            )
            group_id += 1
    with open(data_root / f"{info_prefix}_dbinfos_train.pkl", "wb") as file:
        pickle.dump(db_infos, file)
    return db_infos
