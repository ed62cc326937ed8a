"""Oriented rectangles on the ground plane and a set of them that answers "is this spot free?".

A rectangle is ``(cx, cy, length, width, yaw)`` in metres / radians (the bird's-eye view of a box).
Overlap is decided by the separating-axis test, after a bounding-circle test has ruled out the far ones.
"""

from __future__ import annotations

import numpy as np

from ada3d.datasets.transforms.box_collision import bev_corners, bev_overlaps


def rectangle_corners(rectangles: np.ndarray) -> np.ndarray:
    """``[N, 5]`` rectangles ``(cx, cy, l, w, yaw)`` -> ``[N, 4, 2]`` corners (counter-clockwise)."""
    rectangles = np.asarray(rectangles, dtype=np.float64).reshape(-1, 5)
    flat_boxes = np.zeros((len(rectangles), 7))
    flat_boxes[:, [0, 1, 3, 4, 6]] = rectangles
    return bev_corners(flat_boxes)


def rectangles_overlap(rectangle: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``[K]`` bool: does the rectangle ``[5]`` overlap each of ``others`` ``[K, 5]`` (touching counts)?"""
    rectangle = np.asarray(rectangle, dtype=np.float64)
    others = np.asarray(others, dtype=np.float64).reshape(-1, 5)
    reach = np.hypot(rectangle[2], rectangle[3]) / 2 + np.hypot(others[:, 2], others[:, 3]) / 2
    overlap = np.hypot(others[:, 0] - rectangle[0], others[:, 1] - rectangle[1]) <= reach  # bounding circles
    near = np.flatnonzero(overlap)
    if len(near):
        overlap[near] = bev_overlaps(rectangle_corners(rectangle), rectangle_corners(others[near]))[0]
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
