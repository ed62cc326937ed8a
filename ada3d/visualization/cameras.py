"""Camera presets for the scenes (LiDAR frame: x forward, y left, z up), for off-screen and interactive views."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ada3d.visualization.scene import rendering


@dataclass(frozen=True)
class TopDownCamera:
    """Orthographic view from above: +x (forward) points up in the image, +y (left) to the left.

    The view covers ``x_range`` x ``y_range`` (metres), widened on one axis to the image's aspect ratio,
    so with an image of the range's aspect, pixel ``(row, col)`` of ``(x, y)`` is
    ``((x1 - x) / (x1 - x0) * height, (y1 - y) / (y1 - y0) * width)``.
    """

    x_range: tuple[float, float]
    y_range: tuple[float, float]
    eye_height: float = 200.0

    def apply(self, camera: rendering.Camera, width: int, height: int) -> None:
        half_up = (self.x_range[1] - self.x_range[0]) / 2
        half_right = (self.y_range[1] - self.y_range[0]) / 2
        half_up, half_right = max(half_up, half_right * height / width), max(half_right, half_up * width / height)
        camera.set_projection(rendering.Camera.Projection.Ortho, -half_right, half_right, -half_up, half_up,
                              0.1, 2 * self.eye_height)
        centre = [sum(self.x_range) / 2, sum(self.y_range) / 2, 0.0]
        camera.look_at(centre, [centre[0], centre[1], self.eye_height], [1.0, 0.0, 0.0])


@dataclass(frozen=True)
class ChaseCamera:
    """Perspective view from ``eye`` towards ``centre`` (metres), z up; ``fov`` the vertical field of view."""

    centre: tuple[float, float, float]
    eye: tuple[float, float, float]
    fov: float = 50.0

    def apply(self, camera: rendering.Camera, width: int, height: int) -> None:
        camera.set_projection(self.fov, width / height, 0.5, 1000.0, rendering.Camera.FovType.Vertical)
        camera.look_at(list(self.centre), list(self.eye), [0.0, 0.0, 1.0])


def default_cameras(point_cloud_range: Sequence[float]) -> dict[str, TopDownCamera | ChaseCamera]:
    """``{"chase": ..., "top": ...}`` framing ``point_cloud_range`` ``(x0, y0, z0, x1, y1, z1)``.

    The chase camera stands behind and above the range's rear edge (for KITTI's front-only range, behind
    the sensor) and looks at a point a third of the way into the range.
    """
    x0, y0, z0, x1, y1, _ = point_cloud_range
    length = x1 - x0
    centre = (x0 + length / 3, (y0 + y1) / 2, z0)
    eye = (x0 - 0.25 * length, (y0 + y1) / 2, z0 + 0.45 * length)
    return {"chase": ChaseCamera(centre, eye), "top": TopDownCamera((x0, x1), (y0, y1))}


def project_to_pixels(camera: rendering.Camera, points: np.ndarray, width: int, height: int) -> tuple[np.ndarray, ...]:
    """Pixel ``(col, row)`` ``[N, 2]`` of ``[N, 3]`` points under ``camera``, and ``[N]`` bool: in front of it."""
    homogeneous = np.concatenate([np.asarray(points, dtype=np.float64), np.ones((len(points), 1))], 1)
    clip = homogeneous @ (np.asarray(camera.get_projection_matrix()) @ np.asarray(camera.get_view_matrix())).T
    in_front = clip[:, 3] > 1e-6
    ndc = clip[:, :2] / np.where(in_front, clip[:, 3], 1.0)[:, None]
    pixels = np.stack([(ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height], 1)
    return pixels, in_front
