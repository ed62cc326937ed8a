from .box_ops import box_corners, points_in_boxes
from .data_sample import Det3DDataSample

__all__ = ["Det3DDataSample", "box_corners", "points_in_boxes"]
