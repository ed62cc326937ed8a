"""Evaluation metrics: the official KITTI detection protocol."""

from ada3d.evaluation.box_overlaps import bev_box_overlaps, box3d_overlaps, image_box_overlaps
from ada3d.evaluation.kitti_annos import anno_to_objects, empty_anno, objects_to_anno
from ada3d.evaluation.kitti_eval import kitti_eval
from ada3d.evaluation.kitti_metric import KittiMetric

__all__ = [
    "KittiMetric",
    "anno_to_objects",
    "bev_box_overlaps",
    "box3d_overlaps",
    "empty_anno",
    "image_box_overlaps",
    "kitti_eval",
    "objects_to_anno",
]
