"""IoU of LiDAR boxes in bird's-eye view and in 3D, in torch (CPU and GPU, no custom kernels).

Boxes are ``[N, 7]`` LiDAR boxes ``(x, y, z, l, w, h, yaw)`` (metres, radians, z at the bottom centre;
see ``ada3d.structures.data_sample``). Extra columns (velocities) are ignored.

* :func:`bev_iou` / :func:`iou_3d`: exact IoU of the rotated boxes. The intersection of two rotated
  rectangles is found by clipping one with the four edge half-planes of the other (Sutherland-Hodgman),
  vectorised over box pairs with fixed-size vertex arrays; its area by the shoelace formula. Only pairs
  whose circumscribed circles overlap are clipped, so ``N x M`` matrices with many far-apart boxes
  (anchors against ground truth) cost little more than the pairs that touch.
* :func:`nearest_bev_iou`: the "nearest" BEV IoU of SECOND / mmdet3d / OpenPCDet anchor assignment:
  yaw snapped to the nearest multiple of 90 degrees, then axis-aligned IoU.
* :func:`axis_aligned_bev_iou`: axis-aligned IoU ignoring yaw (mmdet3d's non-rotated BEV NMS).

Every function takes ``aligned=False`` for the ``[N, M]`` matrix of all pairs, or ``aligned=True`` for
the ``[N]`` IoU of row-matched pairs (``N == M``). The IoUs carry no gradient: they serve anchor
assignment, NMS and evaluation.
"""

from __future__ import annotations

import math

import torch

from ada3d.structures.box_ops import box_corners

# A vertex counts as inside a clipping half-plane down to this signed distance (metres x edge length),
# so touching and coincident edges (identical boxes) keep their vertices.
_INSIDE_TOLERANCE = 1e-6


def _check_boxes(boxes: torch.Tensor, name: str) -> None:
    if boxes.dim() != 2 or boxes.shape[1] < 7:
        raise ValueError(f"{name} must be [N, >=7] LiDAR boxes (x, y, z, l, w, h, yaw), got {tuple(boxes.shape)}")


def _check_pair(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool) -> None:
    _check_boxes(boxes_a, "boxes_a")
    _check_boxes(boxes_b, "boxes_b")
    if aligned and len(boxes_a) != len(boxes_b):
        raise ValueError(f"aligned IoU needs as many boxes in both sets, got {len(boxes_a)} and {len(boxes_b)}")


def _clip_by_half_plane(polygon: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Keep the part of convex polygons left of the directed lines ``start -> end``.

    Args:
        polygon: ``[P, K, 2]`` convex polygons, counter-clockwise; a vertex may repeat (repeats add no area).
        start, end: ``[P, 2]`` two points of each clipping line.

    Returns:
        ``[P, K + 1, 2]`` clipped polygons in the same padded form; an empty result is one repeated point.
    """
    num_vertices = polygon.shape[1]
    edge = (end - start)[:, None, :]
    offset = polygon - start[:, None, :]
    side = edge[..., 0] * offset[..., 1] - edge[..., 1] * offset[..., 0]  # > 0: left of the line
    following = polygon.roll(-1, dims=1)
    side_following = side.roll(-1, dims=1)
    inside = side >= -_INSIDE_TOLERANCE
    inside_following = side_following >= -_INSIDE_TOLERANCE
    crosses = inside != inside_following
    denominator = torch.where(crosses, side - side_following, torch.ones_like(side))
    crossing = polygon + (side / denominator)[..., None] * (following - polygon)
    # each polygon edge (v_i, v_i+1) emits its crossing with the line, then v_i+1 when that is inside
    candidates = torch.stack([crossing, following], dim=2).flatten(1, 2)  # [P, 2K, 2]
    valid = torch.stack([crosses, inside_following], dim=2).flatten(1, 2)  # [P, 2K]
    order = torch.argsort((~valid).to(torch.int8), dim=1, stable=True)  # valid ones first, in order
    count = valid.sum(dim=1, keepdim=True)
    slots = torch.arange(num_vertices + 1, device=polygon.device).expand(len(polygon), -1)
    slots = torch.minimum(slots, (count - 1).clamp_min(0))  # pad by repeating the last vertex
    source = order.gather(1, slots)
    return candidates.gather(1, source[..., None].expand(-1, -1, 2))


def _polygon_area(polygon: torch.Tensor) -> torch.Tensor:
    """Shoelace area ``[P]`` of counter-clockwise polygons ``[P, K, 2]``."""
    following = polygon.roll(-1, dims=1)
    cross = polygon[..., 0] * following[..., 1] - polygon[..., 1] * following[..., 0]
    return 0.5 * cross.sum(dim=1)


def bev_intersection_area(boxes_a: torch.Tensor, boxes_b: torch.Tensor) -> torch.Tensor:
    """Area ``[P]`` (m^2) of the BEV intersection of the rotated boxes ``boxes_a[i]`` and ``boxes_b[i]``.

    Both inputs are ``[P, >=7]`` LiDAR boxes.
    """
    corners_a = box_corners(boxes_a[:, :7])[:, :4, :2]  # counter-clockwise, seen from above
    corners_b = box_corners(boxes_b[:, :7])[:, :4, :2]
    polygon = corners_a
    for k in range(4):
        polygon = _clip_by_half_plane(polygon, corners_b[:, k], corners_b[:, (k + 1) % 4])
    return _polygon_area(polygon).clamp_min(0)


def _bev_circles_overlap(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool) -> torch.Tensor:
    """Whether the circumscribed BEV circles of the boxes overlap: ``[N, M]`` (or ``[N]`` aligned) bool."""
    radius_a = 0.5 * torch.hypot(boxes_a[:, 3], boxes_a[:, 4])
    radius_b = 0.5 * torch.hypot(boxes_b[:, 3], boxes_b[:, 4])
    if aligned:
        distance = torch.hypot(boxes_a[:, 0] - boxes_b[:, 0], boxes_a[:, 1] - boxes_b[:, 1])
        return distance < radius_a + radius_b
    distance = torch.cdist(boxes_a[:, :2].contiguous(), boxes_b[:, :2].contiguous())
    return distance < radius_a[:, None] + radius_b[None, :]


def _intersection_where_close(
    boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool, height_overlap: bool
) -> torch.Tensor:
    """Rotated intersection (BEV area, or volume with ``height_overlap``) of all pairs / aligned pairs.

    Pairs whose circumscribed circles are apart are zero without being clipped.
    """
    close = _bev_circles_overlap(boxes_a, boxes_b, aligned)
    intersection = boxes_a.new_zeros(close.shape)
    if aligned:
        index_a = index_b = close.nonzero().squeeze(1)
        target = (index_a,)
    else:
        index_a, index_b = close.nonzero(as_tuple=True)
        target = (index_a, index_b)
    pair_a, pair_b = boxes_a[index_a], boxes_b[index_b]
    area = bev_intersection_area(pair_a, pair_b)
    if height_overlap:
        top = torch.minimum(pair_a[:, 2] + pair_a[:, 5], pair_b[:, 2] + pair_b[:, 5])
        area = area * (top - torch.maximum(pair_a[:, 2], pair_b[:, 2])).clamp_min(0)
    intersection[target] = area
    return intersection


def _iou_from_intersection(intersection: torch.Tensor, size_a: torch.Tensor, size_b: torch.Tensor, aligned: bool):
    union = size_a + size_b - intersection if aligned else size_a[:, None] + size_b[None, :] - intersection
    return intersection / union.clamp_min(torch.finfo(intersection.dtype).eps)


@torch.no_grad()
def bev_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool = False) -> torch.Tensor:
    """IoU of the rotated BEV rectangles of LiDAR boxes: ``[N, M]``, or ``[N]`` when ``aligned``."""
    _check_pair(boxes_a, boxes_b, aligned)
    intersection = _intersection_where_close(boxes_a, boxes_b, aligned, height_overlap=False)
    return _iou_from_intersection(
        intersection, boxes_a[:, 3] * boxes_a[:, 4], boxes_b[:, 3] * boxes_b[:, 4], aligned
    )


@torch.no_grad()
def iou_3d(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool = False) -> torch.Tensor:
    """3D IoU of rotated LiDAR boxes (yaw about z only): ``[N, M]``, or ``[N]`` when ``aligned``."""
    _check_pair(boxes_a, boxes_b, aligned)
    intersection = _intersection_where_close(boxes_a, boxes_b, aligned, height_overlap=True)
    return _iou_from_intersection(
        intersection, boxes_a[:, 3:6].prod(dim=1), boxes_b[:, 3:6].prod(dim=1), aligned
    )


def _axis_aligned_iou(corners_a: torch.Tensor, corners_b: torch.Tensor, aligned: bool) -> torch.Tensor:
    """IoU of axis-aligned rectangles ``[N, 4]`` / ``[M, 4]`` given as ``(x1, y1, x2, y2)``.

    Works on x and y separately, in place where it can: the anchor assigner calls it with M ~ 10^5 anchors.
    """
    if not aligned:
        corners_a, corners_b = corners_a[:, None, :], corners_b[None, :, :]
    x1a, y1a, x2a, y2a = corners_a.unbind(-1)
    x1b, y1b, x2b, y2b = corners_b.unbind(-1)
    intersection = (torch.minimum(x2a, x2b) - torch.maximum(x1a, x1b)).clamp_min_(0)
    intersection.mul_((torch.minimum(y2a, y2b) - torch.maximum(y1a, y1b)).clamp_min_(0))
    union = ((x2a - x1a) * (y2a - y1a) + (x2b - x1b) * (y2b - y1b)).sub_(intersection)
    return intersection.div_(union.clamp_min_(torch.finfo(intersection.dtype).eps))


def _xyxy(centres: torch.Tensor, extents: torch.Tensor) -> torch.Tensor:
    return torch.cat([centres - extents / 2, centres + extents / 2], dim=1)


def nearest_bev_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Axis-aligned BEV rectangles ``[N, 4]`` (x1, y1, x2, y2) of boxes with yaw snapped to k * 90 degrees.

    A box turned by more than 45 degrees from the x axis (modulo 180) swaps its length and width.
    """
    yaw = boxes[:, 6] - torch.floor(boxes[:, 6] / math.pi + 0.5) * math.pi  # [-pi/2, pi/2)
    turned = (yaw.abs() > math.pi / 4)[:, None]
    extents = torch.where(turned, boxes[:, [4, 3]], boxes[:, [3, 4]])
    return _xyxy(boxes[:, :2], extents)


@torch.no_grad()
def nearest_bev_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool = False) -> torch.Tensor:
    """Axis-aligned BEV IoU after snapping yaw to the nearest multiple of 90 degrees (SECOND's assigner IoU)."""
    _check_pair(boxes_a, boxes_b, aligned)
    return _axis_aligned_iou(nearest_bev_xyxy(boxes_a), nearest_bev_xyxy(boxes_b), aligned)


@torch.no_grad()
def axis_aligned_bev_iou(boxes_a: torch.Tensor, boxes_b: torch.Tensor, aligned: bool = False) -> torch.Tensor:
    """BEV IoU of the boxes taken unrotated (length along x, width along y), yaw ignored."""
    _check_pair(boxes_a, boxes_b, aligned)
    return _axis_aligned_iou(
        _xyxy(boxes_a[:, :2], boxes_a[:, 3:5]), _xyxy(boxes_b[:, :2], boxes_b[:, 3:5]), aligned
    )
