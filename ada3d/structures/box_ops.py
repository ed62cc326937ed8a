"""Geometry of LiDAR boxes ``(x, y, z, l, w, h, yaw)`` (z at the bottom centre; see data_sample.py).

Functions take torch tensors or numpy arrays and return the same kind.
"""

import numpy as np
import torch

# Unit-box corner signs in the order (l, w, h): bottom face counter-clockwise from (+l, +w), then top face.
_CORNER_SIGNS = np.array(
    [
        [0.5, 0.5, 0], [-0.5, 0.5, 0], [-0.5, -0.5, 0], [0.5, -0.5, 0],
        [0.5, 0.5, 1], [-0.5, 0.5, 1], [-0.5, -0.5, 1], [0.5, -0.5, 1],
    ],
    dtype=np.float32,
)


def box_corners(boxes):
    """Corners of LiDAR boxes.

    Args:
        boxes: ``[N, 7]`` (x, y, z, l, w, h, yaw), metres / radians.

    Returns:
        ``[N, 8, 3]`` corners in metres: indices 0-3 the bottom face, 4-7 the top face, counter-clockwise
        seen from above, corner 0 at the front-left (+l/2, +w/2) of the box.
    """
    xp = torch if isinstance(boxes, torch.Tensor) else np
    signs = _CORNER_SIGNS if xp is np else torch.as_tensor(_CORNER_SIGNS, device=boxes.device)
    signs = signs.astype(boxes.dtype) if xp is np else signs.to(boxes.dtype)
    local = boxes[:, None, 3:6] * signs[None]  # [N, 8, 3]
    cos, sin = xp.cos(boxes[:, 6])[:, None], xp.sin(boxes[:, 6])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin + boxes[:, None, 0]
    y = local[..., 0] * sin + local[..., 1] * cos + boxes[:, None, 1]
    z = local[..., 2] + boxes[:, None, 2]
    return xp.stack([x, y, z], -1)


def points_in_boxes(points, boxes):
    """Which points lie inside which LiDAR boxes (faces inclusive).

    Args:
        points: ``[P, >=3]``, the first three columns x, y, z in metres.
        boxes: ``[N, 7]`` LiDAR boxes.

    Returns:
        bool ``[P, N]``.
    """
    xp = torch if isinstance(points, torch.Tensor) else np
    offset = points[:, None, :3] - boxes[None, :, :3]  # [P, N, 3]
    cos, sin = xp.cos(boxes[:, 6]), xp.sin(boxes[:, 6])
    local_x = offset[..., 0] * cos + offset[..., 1] * sin
    local_y = -offset[..., 0] * sin + offset[..., 1] * cos
    return (
        (xp.abs(local_x) <= boxes[:, 3] / 2)
        & (xp.abs(local_y) <= boxes[:, 4] / 2)
        & (offset[..., 2] >= 0)
        & (offset[..., 2] <= boxes[:, 5])
    )
