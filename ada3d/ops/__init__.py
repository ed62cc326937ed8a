"""Geometry ops in torch (CPU and GPU): voxelisation, rotated BEV / 3D IoU, BEV NMS."""

from ada3d.ops.iou3d import axis_aligned_bev_iou, bev_intersection_area, bev_iou, iou_3d, nearest_bev_iou
from ada3d.ops.nms import MultiClassNMSResult, multiclass_nms_bev, nms_bev
from ada3d.ops.voxelize import Voxels, dynamic_voxelize, grid_shape, hard_voxelize

__all__ = [
    "MultiClassNMSResult",
    "Voxels",
    "axis_aligned_bev_iou",
    "bev_intersection_area",
    "bev_iou",
    "dynamic_voxelize",
    "grid_shape",
    "hard_voxelize",
    "iou_3d",
    "multiclass_nms_bev",
    "nearest_bev_iou",
    "nms_bev",
]
