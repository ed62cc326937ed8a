"""KITTI labels of a simulated frame: which objects get a label, and their truncation, occlusion, alpha and
2D box.

Like KITTI, only objects seen by the left colour camera are labelled. An object whose box projects
into the image gets

* a full label when at least :data:`MIN_LABEL_POINTS` LiDAR points lie on it,
* a ``DontCare`` region (2D box only) when it has fewer points but some,
* nothing when no point lies on it (fully occluded, or out of range).

Truncation is the fraction of the projected box (the 3D box cut at the camera's near plane) that falls
outside the image. Occlusion comes from the ray caster: of the rays whose line meets the object, the
fraction whose first hit is something else (``f``) maps to KITTI's levels 0 (fully visible,
``f < 0.15``), 1 (partly occluded, ``f < 0.5``), 2 (largely occluded, ``f < 0.85``) and 3 (beyond that;
KITTI's "unknown", which the KITTI metric ignores at every difficulty).
"""

from __future__ import annotations

import numpy as np

from ada3d.datasets.kitti_files import KittiCalib, KittiObject
from ada3d.datasets.synthetic.objects import SceneObject
from ada3d.structures import box_corners, lidar_to_camera_boxes, limit_period, project_to_image, transform_points

MIN_LABEL_POINTS = 5
NEAR_PLANE = 0.1  # metres in front of the camera
OCCLUSION_LEVELS = (0.15, 0.5, 0.85)
_BOX_EDGES = ((0, 1), (1, 2), (2, 3), (3, 0), (4, 5), (5, 6), (6, 7), (7, 4), (0, 4), (1, 5), (2, 6), (3, 7))


def projected_box(box_lidar: np.ndarray, calib: KittiCalib) -> np.ndarray | None:
    """Unclipped pixel box ``[4]`` ``(x1, y1, x2, y2)`` of a LiDAR box cut at the camera's near plane;
    None when the box lies wholly behind it."""
    corners = transform_points(box_corners(np.asarray(box_lidar, dtype=np.float64)[None])[0], calib.lidar2cam)
    depth = corners[:, 2]
    front = [corners[depth >= NEAR_PLANE]]
    for a, b in _BOX_EDGES:
        if (depth[a] - NEAR_PLANE) * (depth[b] - NEAR_PLANE) < 0:
            weight = (NEAR_PLANE - depth[a]) / (depth[b] - depth[a])
            front.append((corners[a] + weight * (corners[b] - corners[a]))[None])
    front = np.concatenate(front)
    if len(front) == 0:
        return None
    pixels, _ = project_to_image(front, calib.cam2img)
    return np.concatenate([pixels.min(0), pixels.max(0)])


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def occlusion_level(visible_rays: int, rays_on_object: int) -> int:
    """KITTI occlusion level from the fraction of the object's rays that hit something else first."""
    occluded = 1.0 - visible_rays / max(rays_on_object, 1)
    return int(np.searchsorted(OCCLUSION_LEVELS, occluded, side="right"))


def make_labels(objects: list[SceneObject], points_per_object: np.ndarray, visible_rays: np.ndarray,
                rays_on_object: np.ndarray, calib: KittiCalib, image_shape=(375, 1242)) -> list[KittiObject]:
    """KITTI label lines of one frame (labelled objects first, then ``DontCare`` regions).

    Args:
        objects: the scene's labelled objects (LiDAR boxes).
        points_per_object / visible_rays / rays_on_object: ``[M]`` counts from the simulated scan.
        calib: the frame's calibration; ``image_shape`` ``(height, width)`` in pixels.
    """
    height, width = image_shape
    image = np.array([0.0, 0.0, width - 1.0, height - 1.0])
    labels, dont_care = [], []
    for index, obj in enumerate(objects):
        if points_per_object[index] == 0:
            continue
        full = projected_box(obj.box, calib)
        if full is None:
            continue
        clipped = np.concatenate([np.maximum(full[:2], image[:2]), np.minimum(full[2:], image[2:])])
        if _area(clipped) <= 0:
            continue
        if points_per_object[index] < MIN_LABEL_POINTS:
            dont_care.append(KittiObject("DontCare", -1.0, -1, -10.0, clipped, np.array([-1.0, -1.0, -1.0]),
                                         np.array([-1000.0, -1000.0, -1000.0]), -10.0))
            continue
        camera_box = lidar_to_camera_boxes(obj.box[None].astype(np.float64), calib.lidar2cam)[0]
        truncation = 1.0 - _area(clipped) / max(_area(full), 1e-9)
        alpha = float(limit_period(camera_box[6] - np.arctan2(camera_box[0], camera_box[2])))
        labels.append(KittiObject(
            obj.name, float(np.clip(truncation, 0.0, 1.0)),
            occlusion_level(int(visible_rays[index]), int(rays_on_object[index])), alpha, clipped,
            camera_box[3:6].copy(), camera_box[:3].copy(), float(camera_box[6]),
        ))
    return labels + dont_care
