"""Overlaps of KITTI boxes, as the official detection metric measures them (numba, float64).

* image boxes ``[N, 4]`` (x1, y1, x2, y2) in pixels: intersection over union, or intersection over the
  area of the first box (how the devkit decides that a detection lies in a DontCare region);
* bird's-eye-view boxes: the rotated rectangles of KITTI camera boxes on the ground plane (camera x, z),
  intersected exactly by clipping one convex polygon with the other;
* 3D camera boxes ``[N, 7]`` (x, y, z, l, h, w, ry), ``(x, y, z)`` the bottom centre, camera y pointing
  down: the rotated ground-plane intersection times the overlap of the height ranges ``[y - h, y]``.

Every function has a batched form over frames: boxes of all frames concatenated, ``offsets [F + 1]``
delimiting each frame's rows, and the result one flat buffer holding each frame's ``[N_f, K_f]`` block
row-major at ``block_offsets[f]``. That lets the metric compute the overlaps of a whole dataset in one
compiled call instead of thousands of small ones.
"""

from __future__ import annotations

import numba
import numpy as np

# which overlap ``_pair_overlap`` computes
IMAGE_IOU, IMAGE_IOA, BEV_IOU, BOX3D_IOU = 0, 1, 2, 3


@numba.njit(cache=True)
def _bev_corners(box: np.ndarray, out: np.ndarray) -> None:
    """Ground-plane corners ``out [4, 2]`` (camera x, z) of camera box ``box [7]``, counter-clockwise.

    A camera box's length axis points along ``(cos ry, -sin ry)`` in (x, z) and its width axis along
    ``(sin ry, cos ry)`` (rotation about camera y). DontCare rows carry dimensions -1: absolute values
    keep their rectangles well formed.
    """
    half_l, half_w = abs(box[3]) / 2, abs(box[5]) / 2
    cos, sin = np.cos(box[6]), np.sin(box[6])
    signs_l = (1.0, -1.0, -1.0, 1.0)
    signs_w = (1.0, 1.0, -1.0, -1.0)
    for k in range(4):
        along, across = signs_l[k] * half_l, signs_w[k] * half_w
        out[k, 0] = box[0] + along * cos + across * sin
        out[k, 1] = box[2] - along * sin + across * cos


@numba.njit(cache=True)
def _clip_polygon(subject: np.ndarray, count: int, edge_start, edge_end, out: np.ndarray) -> int:
    """Sutherland-Hodgman step: keep the part of polygon ``subject[:count]`` left of the directed edge.

    Returns the number of vertices written to ``out``.
    """
    ex, ez = edge_end[0] - edge_start[0], edge_end[1] - edge_start[1]
    written = 0
    for k in range(count):
        px, pz = subject[k, 0], subject[k, 1]
        qx, qz = subject[(k + 1) % count, 0], subject[(k + 1) % count, 1]
        side_p = ex * (pz - edge_start[1]) - ez * (px - edge_start[0])
        side_q = ex * (qz - edge_start[1]) - ez * (qx - edge_start[0])
        if side_p >= 0:
            out[written, 0], out[written, 1] = px, pz
            written += 1
        if (side_p >= 0) != (side_q >= 0):
            t = side_p / (side_p - side_q)
            out[written, 0], out[written, 1] = px + t * (qx - px), pz + t * (qz - pz)
            written += 1
    return written


@numba.njit(cache=True)
def rotated_intersection_area(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """Area (m^2) of the ground-plane intersection of camera boxes ``box_a``, ``box_b`` ``[7]``."""
    reach = np.hypot(box_a[3], box_a[5]) / 2 + np.hypot(box_b[3], box_b[5]) / 2
    if np.hypot(box_a[0] - box_b[0], box_a[2] - box_b[2]) >= reach:
        return 0.0
    corners_b = np.empty((4, 2))
    _bev_corners(box_b, corners_b)
    polygon = np.empty((16, 2))  # convex: at most 8 vertices after four clips, twice for the swap buffer
    scratch = np.empty((16, 2))
    _bev_corners(box_a, polygon)
    count = 4
    for k in range(4):
        count = _clip_polygon(polygon, count, corners_b[k], corners_b[(k + 1) % 4], scratch)
        polygon, scratch = scratch, polygon
        if count < 3:
            return 0.0
    area = 0.0
    for k in range(count):
        area += polygon[k, 0] * polygon[(k + 1) % count, 1] - polygon[(k + 1) % count, 0] * polygon[k, 1]
    return abs(area) / 2


@numba.njit(cache=True)
def _pair_overlap(kind: int, a: np.ndarray, b: np.ndarray) -> float:
    if kind == IMAGE_IOU or kind == IMAGE_IOA:
        width = min(a[2], b[2]) - max(a[0], b[0])
        height = min(a[3], b[3]) - max(a[1], b[1])
        if width <= 0 or height <= 0:
            return 0.0
        intersection = width * height
        area_a = (a[2] - a[0]) * (a[3] - a[1])
        if kind == IMAGE_IOA:
            return intersection / area_a
        return intersection / (area_a + (b[2] - b[0]) * (b[3] - b[1]) - intersection)
    intersection = rotated_intersection_area(a, b)
    if intersection <= 0:
        return 0.0
    if kind == BEV_IOU:
        return intersection / (abs(a[3] * a[5]) + abs(b[3] * b[5]) - intersection)
    # camera y points down: a box spans [y - h, y]
    height = min(a[1], b[1]) - max(a[1] - a[4], b[1] - b[4])
    if height <= 0:
        return 0.0
    intersection *= height
    return intersection / (abs(a[3] * a[4] * a[5]) + abs(b[3] * b[4] * b[5]) - intersection)


@numba.njit(cache=True)
def _blockwise_overlaps(kind, boxes, offsets, query, query_offsets, block_offsets, out):
    for frame in range(len(offsets) - 1):
        cursor = block_offsets[frame]
        for i in range(offsets[frame], offsets[frame + 1]):
            for j in range(query_offsets[frame], query_offsets[frame + 1]):
                out[cursor] = _pair_overlap(kind, boxes[i], query[j])
                cursor += 1


def block_offsets_of(offsets: np.ndarray, query_offsets: np.ndarray) -> np.ndarray:
    """``[F + 1]`` start of each frame's ``[N_f, K_f]`` block in a flat buffer (the last entry its size)."""
    sizes = np.diff(offsets) * np.diff(query_offsets)
    return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)


def framewise_overlaps(
    kind: int, boxes: np.ndarray, offsets: np.ndarray, query: np.ndarray, query_offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Overlaps of ``boxes`` with ``query`` within each frame.

    Args:
        kind: ``IMAGE_IOU``, ``IMAGE_IOA`` (intersection over the area of the ``boxes`` row), ``BEV_IOU`` or
            ``BOX3D_IOU``.
        boxes, query: ``[N, 4]`` image boxes or ``[N, 7]`` camera boxes of all frames, concatenated.
        offsets, query_offsets: ``[F + 1]`` row ranges of each frame in ``boxes`` / ``query``.

    Returns:
        ``(flat, block_offsets)``: frame ``f``'s overlaps are
        ``flat[block_offsets[f]:block_offsets[f + 1]].reshape(N_f, K_f)``.
    """
    width = 4 if kind in (IMAGE_IOU, IMAGE_IOA) else 7
    boxes = np.ascontiguousarray(boxes, dtype=np.float64).reshape(-1, width)
    query = np.ascontiguousarray(query, dtype=np.float64).reshape(-1, width)
    offsets, query_offsets = np.asarray(offsets, np.int64), np.asarray(query_offsets, np.int64)
    if len(offsets) != len(query_offsets):
        raise ValueError(f"frame counts differ: {len(offsets) - 1} vs {len(query_offsets) - 1}")
    blocks = block_offsets_of(offsets, query_offsets)
    flat = np.zeros(blocks[-1], dtype=np.float64)
    _blockwise_overlaps(kind, boxes, offsets, query, query_offsets, blocks, flat)
    return flat, blocks


def _single_frame(kind: int, boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    width = 4 if kind in (IMAGE_IOU, IMAGE_IOA) else 7
    boxes, query = np.asarray(boxes).reshape(-1, width), np.asarray(query).reshape(-1, width)
    flat, _ = framewise_overlaps(kind, boxes, [0, len(boxes)], query, [0, len(query)])
    return flat.reshape(len(boxes), len(query))


def image_box_overlaps(boxes: np.ndarray, query: np.ndarray, over_first_area: bool = False) -> np.ndarray:
    """``[N, K]`` IoU of image boxes ``[N, 4]`` and ``[K, 4]`` (x1, y1, x2, y2), or with
    ``over_first_area`` the intersection over the area of the ``boxes`` row (the devkit's DontCare test)."""
    return _single_frame(IMAGE_IOA if over_first_area else IMAGE_IOU, boxes, query)


def bev_box_overlaps(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``[N, K]`` bird's-eye-view IoU of KITTI camera boxes ``[N, 7]`` and ``[K, 7]`` (ground plane x, z)."""
    return _single_frame(BEV_IOU, boxes, query)


def box3d_overlaps(boxes: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``[N, K]`` 3D IoU of KITTI camera boxes ``[N, 7]`` and ``[K, 7]`` (x, y, z, l, h, w, ry)."""
    return _single_frame(BOX3D_IOU, boxes, query)
