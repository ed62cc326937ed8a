"""Rotated BEV / 3D IoU against an independent exact reference (vertex enumeration + convex hull)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ada3d.ops.iou3d import axis_aligned_bev_iou, bev_intersection_area, bev_iou, iou_3d, nearest_bev_iou
from ada3d.structures import points_in_boxes


def _corners(box) -> list[tuple[float, float]]:
    x, y, _, length, width, _, yaw = box[:7]
    cos, sin = math.cos(yaw), math.sin(yaw)
    half_l, half_w = length / 2, width / 2
    offsets = ((half_l, half_w), (-half_l, half_w), (-half_l, -half_w), (half_l, -half_w))  # counter-clockwise
    return [(x + dx * cos - dy * sin, y + dx * sin + dy * cos) for dx, dy in offsets]


def _inside(point, polygon) -> bool:
    """Point in (or on) a counter-clockwise convex polygon."""
    px, py = point
    for (ax, ay), (bx, by) in zip(polygon, polygon[1:] + polygon[:1]):
        if (bx - ax) * (py - ay) - (by - ay) * (px - ax) < -1e-9:
            return False
    return True


def _segment_crossing(p1, p2, q1, q2):
    d = (p2[0] - p1[0]) * (q2[1] - q1[1]) - (p2[1] - p1[1]) * (q2[0] - q1[0])
    if abs(d) < 1e-12:
        return None
    t = ((q1[0] - p1[0]) * (q2[1] - q1[1]) - (q1[1] - p1[1]) * (q2[0] - q1[0])) / d
    u = ((q1[0] - p1[0]) * (p2[1] - p1[1]) - (q1[1] - p1[1]) * (p2[0] - p1[0])) / d
    if -1e-12 <= t <= 1 + 1e-12 and -1e-12 <= u <= 1 + 1e-12:
        return (p1[0] + t * (p2[0] - p1[0]), p1[1] + t * (p2[1] - p1[1]))
    return None


def _hull_area(points) -> float:
    points = sorted(set(points))
    if len(points) < 3:
        return 0.0

    def turn(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    def half(sequence):
        chain = []
        for p in sequence:
            while len(chain) >= 2 and turn(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    hull = half(points)[:-1] + half(points[::-1])[:-1]
    return 0.5 * abs(sum(a[0] * b[1] - a[1] * b[0] for a, b in zip(hull, hull[1:] + hull[:1])))


def reference_bev_intersection(box_a, box_b) -> float:
    """Intersection area: corners of each box inside the other plus all edge crossings span the overlap."""
    poly_a, poly_b = _corners(box_a), _corners(box_b)
    points = [p for p in poly_a if _inside(p, poly_b)] + [p for p in poly_b if _inside(p, poly_a)]
    for a1, a2 in zip(poly_a, poly_a[1:] + poly_a[:1]):
        for b1, b2 in zip(poly_b, poly_b[1:] + poly_b[:1]):
            crossing = _segment_crossing(a1, a2, b1, b2)
            if crossing is not None:
                points.append(crossing)
    return _hull_area([(round(x, 9), round(y, 9)) for x, y in points])


def reference_bev_iou(box_a, box_b) -> float:
    inter = reference_bev_intersection(box_a, box_b)
    return inter / (box_a[3] * box_a[4] + box_b[3] * box_b[4] - inter)


def random_boxes(generator: np.random.Generator, count: int, spread: float) -> torch.Tensor:
    centres = generator.uniform(-spread, spread, (count, 3))
    sizes = generator.uniform(0.3, 5.0, (count, 3))
    yaw = generator.uniform(-math.pi, math.pi, (count, 1))
    return torch.from_numpy(np.concatenate([centres, sizes, yaw], 1))


def test_random_pairs_match_exact_reference():
    generator = np.random.default_rng(0)
    boxes_a, boxes_b = random_boxes(generator, 40, 2.5), random_boxes(generator, 30, 2.5)
    iou = bev_iou(boxes_a, boxes_b)
    expected = torch.tensor([[reference_bev_iou(a.tolist(), b.tolist()) for b in boxes_b] for a in boxes_a])
    assert (expected > 0.05).sum() > 300 and (expected == 0).sum() > 20  # both overlapping and disjoint pairs
    torch.testing.assert_close(iou, expected.double(), atol=1e-7, rtol=0)


def test_float32_close_to_float64():
    generator = np.random.default_rng(1)
    boxes_a, boxes_b = random_boxes(generator, 50, 3.0), random_boxes(generator, 50, 3.0)
    single = bev_iou(boxes_a.float(), boxes_b.float())
    torch.testing.assert_close(single, bev_iou(boxes_a, boxes_b).float(), atol=1e-4, rtol=0)


def test_monte_carlo_agrees_on_a_rotated_pair():
    box_a = torch.tensor([[1.0, 0.5, 0, 4.0, 1.8, 1.5, 0.4]], dtype=torch.float64)
    box_b = torch.tensor([[2.0, 1.0, 0, 3.0, 2.5, 1.5, -1.1]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    samples = torch.rand(400_000, 2, generator=generator, dtype=torch.float64) * 10 - torch.tensor([3.5, 4.5])
    points = torch.cat([samples, torch.full((len(samples), 1), 0.5, dtype=torch.float64)], 1)
    area = 100 * points_in_boxes(points, torch.cat([box_a, box_b])).all(1).double().mean()
    assert bev_intersection_area(box_a, box_b).item() == pytest.approx(area.item(), abs=0.05)


@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.5, math.pi])
def test_identical_boxes_have_iou_one(yaw):
    boxes = torch.tensor([[3.0, -2.0, -1.0, 3.9, 1.6, 1.56, yaw]])
    assert bev_iou(boxes, boxes).item() == pytest.approx(1.0, abs=1e-5)
    assert iou_3d(boxes, boxes).item() == pytest.approx(1.0, abs=1e-5)


def test_disjoint_and_touching_boxes_have_iou_zero():
    boxes_a = torch.tensor([[0.0, 0, 0, 2, 2, 1, 0], [0.0, 0, 0, 2, 2, 1, 0]])
    boxes_b = torch.tensor([[10.0, 0, 0, 2, 2, 1, 0.3], [2.0, 0, 0, 2, 2, 1, 0]])  # far; sharing an edge
    assert bev_iou(boxes_a, boxes_b, aligned=True).tolist() == pytest.approx([0.0, 0.0], abs=1e-6)


def test_square_rotated_by_90_degrees_is_itself_and_rectangle_is_not():
    square = torch.tensor([[1.0, 1.0, 0, 2, 2, 1, 0]])
    turned_square = torch.tensor([[1.0, 1.0, 0, 2, 2, 1, math.pi / 2]])
    assert bev_iou(square, turned_square).item() == pytest.approx(1.0, abs=1e-6)
    rectangle = torch.tensor([[0.0, 0, 0, 4, 2, 1, 0]])
    turned = torch.tensor([[0.0, 0, 0, 4, 2, 1, math.pi / 2]])
    assert bev_iou(rectangle, turned).item() == pytest.approx(4 / 12)  # a 2 x 2 cross-section over 8 + 8 - 4


def test_square_rotated_by_45_degrees_overlap_is_the_regular_octagon():
    square = torch.tensor([[0.0, 0, 0, 2, 2, 1, 0]], dtype=torch.float64)
    diamond = torch.tensor([[0.0, 0, 0, 2, 2, 1, math.pi / 4]], dtype=torch.float64)
    octagon = 8 * (math.sqrt(2) - 1)
    assert bev_iou(square, diamond).item() == pytest.approx(octagon / (8 - octagon))


def test_iou_3d_scales_by_height_overlap():
    box_a = torch.tensor([[0.0, 0, 0, 2, 2, 2, 0.3]])
    box_b = torch.tensor([[0.0, 0, 1, 2, 2, 2, 0.3]])  # same footprint, half the height shared
    assert iou_3d(box_a, box_b).item() == pytest.approx(4 / 12)
    assert iou_3d(box_a, box_b + torch.tensor([0, 0, 5.0, 0, 0, 0, 0])).item() == 0


def test_nearest_iou_snaps_yaw_to_right_angles():
    anchor = torch.tensor([[0.0, 0, 0, 3.9, 1.6, 1.56, 0]])
    car_at_80_degrees = torch.tensor([[0.0, 0, 0, 3.9, 1.6, 1.56, math.radians(80)]])
    anchor_at_90 = torch.tensor([[0.0, 0, 0, 3.9, 1.6, 1.56, math.pi / 2]])
    assert nearest_bev_iou(car_at_80_degrees, anchor_at_90).item() == pytest.approx(1.0)
    assert nearest_bev_iou(car_at_80_degrees, anchor).item() == pytest.approx(1.6 * 1.6 / (2 * 3.9 * 1.6 - 1.6 * 1.6))
    assert axis_aligned_bev_iou(car_at_80_degrees, anchor).item() == pytest.approx(1.0)  # ignores yaw


def test_empty_inputs_and_bad_shapes():
    empty = torch.zeros((0, 7))
    assert bev_iou(empty, torch.ones((3, 7))).shape == (0, 3)
    assert nearest_bev_iou(torch.ones((2, 7)), empty).shape == (2, 0)
    with pytest.raises(ValueError, match="boxes_b must be"):
        bev_iou(torch.ones((2, 7)), torch.ones((2, 5)))
    with pytest.raises(ValueError, match="as many boxes"):
        iou_3d(torch.ones((2, 7)), torch.ones((3, 7)), aligned=True)
