"""Oriented rectangles on the ground plane and a set of them that answers "is this spot free?".

A rectangle is ``(cx, cy, length, width, yaw)`` in metres / radians (the bird's-eye view of a box).
Overlap is decided by the separating-axis test, after a bounding-circle test has ruled out the far ones.
"""

from __future__ import annotations

import numpy as np


def rectangle_corners(rectangles: np.ndarray) -> np.ndarray:
    """``[N, 5]`` rectangles ``(cx, cy, l, w, yaw)`` -> ``[N, 4, 2]`` corners (counter-clockwise)."""
    rectangles = np.asarray(rectangles, dtype=np.float64).reshape(-1, 5)
    signs = np.array([[0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.5, -0.5]])
    local = signs[None] * rectangles[:, None, 2:4]
    cos, sin = np.cos(rectangles[:, 4])[:, None], np.sin(rectangles[:, 4])[:, None]
    x = local[..., 0] * cos - local[..., 1] * sin + rectangles[:, None, 0]
    y = local[..., 0] * sin + local[..., 1] * cos + rectangles[:, None, 1]
    return np.stack([x, y], -1)


def rectangles_overlap(rectangle: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``[K]`` bool: does the rectangle ``[5]`` overlap each of ``others`` ``[K, 5]`` (touching counts)?"""
    rectangle = np.asarray(rectangle, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, 5)
    reach = np.hypot(rectangle[2], rectangle[3]) / 2 + np.hypot(others[:, 2], others[:, 3]) / 2
    overlap = np.hypot(others[:, 0] - rectangle[0], others[:, 1] - rectangle[1]) <= reach
    near = np.flatnonzero(overlap)
    if len(near) == 0:
        return overlap
    a = rectangle_corners(rectangle)[0]  # [4, 2]
    b = rectangle_corners(others[near])  # [K', 4, 2]
    separated = np.zeros(len(near), dtype=bool)
    for yaws in (np.full(len(near), rectangle[4]), others[near, 4]):
        for angle in (yaws, yaws + np.pi / 2):
            axis = np.stack([np.cos(angle), np.sin(angle)], -1)  # [K', 2]
            pa = (a[None] * axis[:, None]).sum(-1)  # [K', 4]
            pb = (b * axis[:, None]).sum(-1)
            separated |= (pa.max(1) < pb.min(1)) | (pb.max(1) < pa.min(1))
    overlap[near] = ~separated
    return overlap


class FootprintSet:
    """Rectangles already taken; :meth:`is_free` tests a candidate against all of them."""

    def __init__(self):
        self._rectangles = np.zeros((64, 5))
        self._count = 0

    def is_free(self, rectangle, margin: float = 0.0) -> bool:
        """True when ``rectangle`` grown by ``margin`` on every side overlaps no stored rectangle."""
        grown = np.asarray(rectangle, dtype=np.float64).copy()
        grown[2:4] += 2 * margin
        return not rectangles_overlap(grown, self._rectangles[: self._count]).any()

    def add(self, rectangle) -> None:
        if self._count == len(self._rectangles):
            self._rectangles = np.concatenate([self._rectangles, np.zeros_like(self._rectangles)])
        self._rectangles[self._count] = rectangle
        self._count += 1
