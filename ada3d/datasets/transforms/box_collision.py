"""Bird's-eye-view overlap of rotated LiDAR boxes on the CPU (numpy), for collision checks in augmentation.

Two convex quadrilaterals overlap unless some edge normal of one of them separates their projections (the
separating-axis theorem). Touching boxes count as overlapping.
"""

from __future__ import annotations

import numba
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
    overlaps = np.zeros((len(corners_a), len(corners_b)), dtype=bool)
    _overlap_loop(
        np.ascontiguousarray(corners_a, dtype=np.float64), np.ascontiguousarray(corners_b, dtype=np.float64), overlaps
    )
    return overlaps


@numba.njit(cache=True)
def _overlap_loop(corners_a: np.ndarray, corners_b: np.ndarray, overlaps: np.ndarray) -> None:
    """Fill ``overlaps [A, B]``: no separating axis among the two edge normals of each rectangle."""
    for a in range(corners_a.shape[0]):
        for b in range(corners_b.shape[0]):
            overlaps[a, b] = not (_separates(corners_a[a], corners_a[a], corners_b[b])
                                  or _separates(corners_b[b], corners_a[a], corners_b[b]))


@numba.njit(cache=True)
def _separates(edges_of: np.ndarray, first: np.ndarray, second: np.ndarray) -> bool:
    """Whether a normal of edge 0->1 or 1->2 of quadrilateral ``edges_of [4, 2]`` separates the projections of
    ``first`` and ``second`` (touching projections do not separate)."""
    for e in range(2):
        normal_x = -(edges_of[e + 1, 1] - edges_of[e, 1])
        normal_y = edges_of[e + 1, 0] - edges_of[e, 0]
        min_1, max_1, min_2, max_2 = np.inf, -np.inf, np.inf, -np.inf
        for k in range(4):
            p1 = normal_x * first[k, 0] + normal_y * first[k, 1]
            p2 = normal_x * second[k, 0] + normal_y * second[k, 1]
            min_1, max_1 = min(min_1, p1), max(max_1, p1)
            min_2, max_2 = min(min_2, p2), max(max_2, p2)
        if max_1 < min_2 or max_2 < min_1:
            return True
    return False
