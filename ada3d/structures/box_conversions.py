"""Conversions between LiDAR boxes and KITTI camera boxes, and projection of boxes into an image.

LiDAR box: ``(x, y, z, l, w, h, yaw)``, z at the bottom centre, yaw counter-clockwise from +x (see
data_sample.py). KITTI camera box: ``(x, y, z, l, h, w, ry)`` in the rectified camera frame (x right,
y down, z forward), ``(x, y, z)`` the bottom centre, ``ry`` the rotation about the camera's y axis, as in
KITTI's label files. ``lidar2cam`` is the 4x4 transform from LiDAR to the *rectified* camera frame
(``R0_rect @ Tr_velo_to_cam``); ``cam2img`` the 4x4-padded projection matrix (``P2``).

The box functions take numpy arrays (float32/float64) and return numpy arrays; ``limit_period`` also takes tensors.
"""

import numpy as np
import torch

from ada3d.structures.box_ops import box_corners


def limit_period(angle, offset: float = 0.5, period: float = 2 * np.pi):
    """Wrap ``angle`` (radians; numpy or torch) into ``[-offset * period, (1 - offset) * period)``."""
    floor = torch.floor if isinstance(angle, torch.Tensor) else np.floor
    return angle - floor(angle / period + offset) * period


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous transform to ``[N, 3]`` points; returns ``[N, 3]``."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def camera_to_lidar_boxes(boxes_cam: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """KITTI camera boxes ``[N, 7]`` -> LiDAR boxes ``[N, 7]`` (bottom centres map to bottom centres)."""
    boxes_cam = np.asarray(boxes_cam).reshape(-1, 7)
    centres = transform_points(boxes_cam[:, :3], np.linalg.inv(lidar2cam))
    length, height, width = boxes_cam[:, 3], boxes_cam[:, 4], boxes_cam[:, 5]
    yaw = limit_period(-boxes_cam[:, 6] - np.pi / 2)
    return np.concatenate([centres, np.stack([length, width, height, yaw], 1)], 1).astype(boxes_cam.dtype)


def lidar_to_camera_boxes(boxes_lidar: np.ndarray, lidar2cam: np.ndarray) -> np.ndarray:
    """LiDAR boxes ``[N, 7]`` -> KITTI camera boxes ``[N, 7]``; the inverse of :func:`camera_to_lidar_boxes`."""
    boxes_lidar = np.asarray(boxes_lidar).reshape(-1, 7)
    centres = transform_points(boxes_lidar[:, :3], lidar2cam)
    length, width, height = boxes_lidar[:, 3], boxes_lidar[:, 4], boxes_lidar[:, 5]
    ry = limit_period(-boxes_lidar[:, 6] - np.pi / 2)
    return np.concatenate([centres, np.stack([length, height, width, ry], 1)], 1).astype(boxes_lidar.dtype)


def project_to_image(points_cam: np.ndarray, cam2img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project ``[..., 3]`` camera-frame points; returns pixel ``(u, v)`` ``[..., 2]`` and depth ``[...]``."""
    homogeneous = points_cam @ cam2img[:3, :3].T + cam2img[:3, 3]
    depth = homogeneous[..., 2]
    return homogeneous[..., :2] / np.maximum(depth, 1e-6)[..., None], depth


def lidar_boxes_to_image_boxes(
    boxes_lidar: np.ndarray, lidar2cam: np.ndarray, cam2img: np.ndarray, image_shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """2D boxes of LiDAR boxes in the image, as KITTI's evaluation expects for predictions.

    Args:
        boxes_lidar: ``[N, 7]`` LiDAR boxes.
        lidar2cam, cam2img: 4x4 calibration (see the module docstring).
        image_shape: ``(height, width)`` in pixels.

    Returns:
        ``(boxes_2d [N, 4] (x1, y1, x2, y2) clipped to the image, visible [N] bool)``; a box is visible
        when all its corners lie in front of the camera and its projection overlaps the image.
    """
    boxes_lidar = np.asarray(boxes_lidar, dtype=np.float64).reshape(-1, 7)
    corners = transform_points(box_corners(boxes_lidar).reshape(-1, 3), lidar2cam).reshape(-1, 8, 3)
    pixels, depth = project_to_image(corners, cam2img)
    height, width = image_shape
    boxes_2d = np.concatenate([pixels.min(1), pixels.max(1)], 1)
    visible = (depth > 0).all(1) & (boxes_2d[:, 0] < width) & (boxes_2d[:, 1] < height)
    visible &= (boxes_2d[:, 2] > 0) & (boxes_2d[:, 3] > 0)
    boxes_2d[:, [0, 2]] = boxes_2d[:, [0, 2]].clip(0, width - 1)
    boxes_2d[:, [1, 3]] = boxes_2d[:, [1, 3]].clip(0, height - 1)
    return boxes_2d, visible
