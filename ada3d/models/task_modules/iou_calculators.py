"""Box-overlap calculators for anchor assignment, under mmdet3d's config names."""

from __future__ import annotations

import torch

from ada3d.ops.iou3d import bev_iou, iou_3d, nearest_bev_iou
from ada3d.registry import TASK_UTILS


class _LidarOverlaps:
    """``calculator(boxes_a [N, >=7], boxes_b [M, >=7]) -> IoU [N, M]`` (``[N]`` with ``is_aligned``)."""

    def __init__(self, coordinate: str = "lidar") -> None:
        if coordinate != "lidar":
            raise ValueError(f"{type(self).__name__} supports LiDAR boxes only, got coordinate={coordinate!r}")
        self.coordinate = coordinate

    def __call__(
        self, boxes_a: torch.Tensor, boxes_b: torch.Tensor, mode: str = "iou", is_aligned: bool = False
    ) -> torch.Tensor:
        if mode != "iou":
            raise ValueError(f"{type(self).__name__} computes mode='iou' only, got {mode!r}")
        return self._iou(boxes_a, boxes_b, aligned=is_aligned)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(coordinate={self.coordinate!r})"


@TASK_UTILS.register_module()
class BboxOverlapsNearest3D(_LidarOverlaps):
    """BEV IoU with yaw snapped to the nearest right angle (SECOND's and mmdet3d's assignment IoU).

    The rotated IoU of a car turned 45 degrees against either anchor rotation is at most ~0.41, below
    the car thresholds (0.6 / 0.45), so such cars would get no positive anchor; the snapped IoU is 1.
    """

    _iou = staticmethod(nearest_bev_iou)


@TASK_UTILS.register_module()
class BboxOverlapsRotatedBEV(_LidarOverlaps):
    """Exact IoU of the rotated BEV rectangles."""

    _iou = staticmethod(bev_iou)


@TASK_UTILS.register_module()
class BboxOverlaps3D(_LidarOverlaps):
    """Exact 3D IoU of the rotated boxes (yaw about z)."""

    _iou = staticmethod(iou_3d)
