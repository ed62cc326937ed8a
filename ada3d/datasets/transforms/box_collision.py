"""Bird's-eye-view overlap of rotated LiDAR boxes on the CPU (numpy), for collision checks in augmentation.

Two convex quadrilaterals overlap unless some edge normal of one of them separates their projections (the
separating-axis theorem). Touching boxes count as overlapping.
"""

from __future__ import annotations

import numpy as np

from ada3d.structures import box_corners


def bev_corners(boxes: np.ndarray) -> np.ndarray:
    """``[M, 4, 2]`` BEV corners (x, y), counter-clockwise, of LiDAR boxes ``[M, 7]``."""
    return box_corners(np.asarray(boxes, dtype=np.float64).reshape(-1, 7))[:, :4, :2]


def bev_overlaps(corners_a: np.ndarray, corners_b: np.ndarray) -> np.ndarray:
    """Which BEV quadrilaterals of ``corners_a`` ``[A, 4, 2]`` overlap which of ``corners_b`` ``[B, 4, 2]``.

    Returns:
        bool ``[A, B]``.
    """
    # edge normals: two per rectangle (opposite edges are parallel)
    normals_a = _edge_normals(corners_a)  # [A, 2, 2]
    normals_b = _edge_normals(corners_b)  # [B, 2, 2]
    axes = np.concatenate(
        [np.broadcast_to(normals_a[:, None], (len(corners_a), len(corners_b), 2, 2)),
         np.broadcast_to(normals_b[None], (len(corners_a), len(corners_b), 2, 2))],
        axis=2,
    )  # [A, B, 4, 2]
    projected_a = np.einsum("abkd,acd->abkc", axes, corners_a)  # [A, B, axis, corner]
    projected_b = np.einsum("abkd,bcd->abkc", axes, corners_b)
    separated = (projected_a.max(-1) < projected_b.min(-1)) | (projected_b.max(-1) < projected_a.min(-1))
    return ~separated.any(-1)


def _edge_normals(corners: np.ndarray) -> np.ndarray:
    edges = corners[:, 1:3] - corners[:, 0:2]  # [N, 2, 2]
    return np.stack([-edges[..., 1], edges[..., 0]], axis=-1)
