from .box_conversions import (
    camera_to_lidar_boxes,
    lidar_boxes_to_image_boxes,
    lidar_to_camera_boxes,
    limit_period,
    project_to_image,
    transform_points,
)
from .box_ops import box_corners, points_in_boxes
from .data_sample import Det3DDataSample

__all__ = [
    "Det3DDataSample",
    "box_corners",
    "camera_to_lidar_boxes",
    "lidar_boxes_to_image_boxes",
    "lidar_to_camera_boxes",
    "limit_period",
    "points_in_boxes",
    "project_to_image",
    "transform_points",
]
