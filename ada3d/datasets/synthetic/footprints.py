"""Oriented rectangles on the ground plane and a set of them that answers "is this spot free?".

A rectangle is ``(cx, cy, length, width, yaw)`` in metres / radians (the bird's-eye view of a box).
Overlap is decided by the separating-axis test.
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
    others = np.asarray(others, dtype=np.float64).reshape(-1, 5)
    if len(others) == 0:
        return np.zeros(0, dtype=bool)
    a = rectangle_corners(rectangle)[0]  # [4, 2]
    b = rectangle_corners(others)  # [K, 4, 2]
    yaw_a = np.broadcast_to(rectangle[4], len(others))
    overlap = np.ones(len(others), dtype=bool)
    for yaws in (yaw_a, others[:, 4]):
        for angle in (yaws, yaws + np.pi / 2):
            axis = np.stack([np.cos(angle), np.sin(angle)], -1)  # [K, 2]
            pa = np.einsum("cd,kd->kc", a, axis)
            pb = np.einsum("kcd,kd->kc", b, axis)
            overlap &= (pa.max(1) >= pb.min(1)) & (pb.max(1) >= pa.min(1))
    return overlap


class FootprintSet:
    """Rectangles already taken; :meth:`is_free` tests a candidate against all of them."""

    def __init__(self):
        self._rectangles: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._rectangles)

    def is_free(self, rectangle, margin: float = 0.0) -> bool:
        """True when ``rectangle`` grown by ``margin`` on every side overlaps no stored rectangle."""
        grown = np.asarray(rectangle, dtype=np.float64).copy()
        grown[2:4] += 2 * margin
        return not rectangles_overlap(grown, np.array(self._rectangles)).any() if self._rectangles else True

    def add(self, rectangle) -> None:
        self._rectangles.append(np.asarray(rectangle, dtype=np.float64))
