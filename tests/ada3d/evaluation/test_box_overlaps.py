import numpy as np
import pytest

from ada3d.evaluation.box_overlaps import (
    BEV_IOU,
    bev_box_overlaps,
    box3d_overlaps,
    framewise_overlaps,
    image_box_overlaps,
)


def camera_box(x=0.0, y=1.5, z=20.0, length=4.0, height=1.5, width=2.0, ry=0.0):
    return np.array([x, y, z, length, height, width, ry])


def bev_polygon(box):
    """Counter-clockwise ground-plane corners (x, z) of a camera box, written independently of the module."""
    x, _, z, length, _, width, ry = box
    axis_l = np.array([np.cos(ry), -np.sin(ry)])
    axis_w = np.array([np.sin(ry), np.cos(ry)])
    signs = [(1, 1), (-1, 1), (-1, -1), (1, -1)]
    return np.array([[x, z] + sl * length / 2 * axis_l + sw * width / 2 * axis_w for sl, sw in signs])


def inside(points, polygon):
    """Points inside or on a counter-clockwise convex polygon."""
    result = np.ones(len(points), bool)
    for start, end in zip(polygon, np.roll(polygon, -1, 0)):
        edge, offset = end - start, points - start
        result &= edge[0] * offset[:, 1] - edge[1] * offset[:, 0] >= -1e-9
    return result


def reference_intersection_area(box_a, box_b):
    """Vertex enumeration: corners inside the other box plus edge crossings, sorted by angle, shoelace."""
    poly_a, poly_b = bev_polygon(box_a), bev_polygon(box_b)
    points = [*poly_a[inside(poly_a, poly_b)], *poly_b[inside(poly_b, poly_a)]]
    for p, p2 in zip(poly_a, np.roll(poly_a, -1, 0)):
        for q, q2 in zip(poly_b, np.roll(poly_b, -1, 0)):
            r, s = p2 - p, q2 - q
            denominator = r[0] * s[1] - r[1] * s[0]
            if abs(denominator) < 1e-12:
                continue
            t = ((q - p)[0] * s[1] - (q - p)[1] * s[0]) / denominator
            u = ((q - p)[0] * r[1] - (q - p)[1] * r[0]) / denominator
            if 0 <= t <= 1 and 0 <= u <= 1:
                points.append(p + t * r)
    if len(points) < 3:
        return 0.0
    points = np.array(points)
    centre = points.mean(0)
    points = points[np.argsort(np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0]))]
    x, z = points[:, 0], points[:, 1]
    return abs(np.dot(x, np.roll(z, -1)) - np.dot(z, np.roll(x, -1))) / 2


def random_boxes(rng, count):
    return np.stack(
        [rng.uniform(-3, 3, count), rng.uniform(0, 2, count), rng.uniform(17, 23, count),
         rng.uniform(0.5, 5, count), rng.uniform(0.5, 2, count), rng.uniform(0.5, 3, count),
         rng.uniform(-np.pi, np.pi, count)], 1
    )


@pytest.mark.parametrize("shift", [0.0, 0.5, 1.0, 3.0, 4.5])
def test_shift_along_the_length_axis_has_the_known_iou(shift):
    for ry in (0.0, 0.7, -2.0):
        base = camera_box(ry=ry)
        moved = camera_box(x=shift * np.cos(ry), z=20.0 - shift * np.sin(ry), ry=ry)
        expected = max(4.0 - shift, 0) / (4.0 + min(shift, 4.0))
        np.testing.assert_allclose(bev_box_overlaps(base[None], moved[None]), [[expected]], atol=1e-12)
        np.testing.assert_allclose(box3d_overlaps(base[None], moved[None]), [[expected]], atol=1e-12)


def test_height_overlap_and_rotation_by_a_quarter_turn():
    base = camera_box(length=4.0, width=2.0, height=1.5)
    lifted = camera_box(y=0.75, length=4.0, width=2.0, height=1.5)  # half the height range shared
    np.testing.assert_allclose(bev_box_overlaps(base[None], lifted[None]), [[1.0]])
    np.testing.assert_allclose(box3d_overlaps(base[None], lifted[None]), [[6.0 / 18.0]])
    turned = camera_box(ry=np.pi / 2)  # a 2x2 square in common, union 8 + 8 - 4
    np.testing.assert_allclose(bev_box_overlaps(base[None], turned[None]), [[4.0 / 12.0]], atol=1e-12)
    far = camera_box(x=50.0)
    assert bev_box_overlaps(base[None], far[None])[0, 0] == 0.0


def test_rotated_overlaps_match_a_vertex_enumeration_reference():
    rng = np.random.default_rng(0)
    boxes, query = random_boxes(rng, 40), random_boxes(rng, 30)
    bev = bev_box_overlaps(boxes, query)
    areas = boxes[:, 3] * boxes[:, 5]
    query_areas = query[:, 3] * query[:, 5]
    reference = np.array(
        [[reference_intersection_area(a, b) for b in query] for a in boxes]
    )
    expected_bev = reference / (areas[:, None] + query_areas[None] - reference)
    assert (expected_bev > 0.1).sum() > 100  # the random boxes overlap substantially, not just touch
    np.testing.assert_allclose(bev, expected_bev, atol=1e-9)
    np.testing.assert_allclose(bev_box_overlaps(query, boxes), bev.T, atol=1e-12)

    heights = np.clip(
        np.minimum(boxes[:, None, 1], query[None, :, 1])
        - np.maximum(boxes[:, None, 1] - boxes[:, None, 4], query[None, :, 1] - query[None, :, 4]), 0, None
    )
    volumes, query_volumes = areas * boxes[:, 4], query_areas * query[:, 4]
    shared = reference * heights
    np.testing.assert_allclose(
        box3d_overlaps(boxes, query), shared / (volumes[:, None] + query_volumes[None] - shared), atol=1e-9
    )


def test_rotated_intersection_agrees_with_monte_carlo():
    rng = np.random.default_rng(1)
    boxes = random_boxes(rng, 6)
    samples = np.stack([rng.uniform(-7, 7, 400_000), rng.uniform(13, 27, 400_000)], 1)  # covers every box
    hits = [inside(samples, bev_polygon(box)) for box in boxes]
    for a in range(len(boxes)):
        for b in range(a + 1, len(boxes)):
            both, either = (hits[a] & hits[b]).sum(), (hits[a] | hits[b]).sum()
            assert bev_box_overlaps(boxes[a][None], boxes[b][None])[0, 0] == pytest.approx(both / either, abs=0.01)


def test_image_boxes_iou_and_intersection_over_own_area():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0]])
    query = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 5.0, 5.0], [20.0, 20.0, 30.0, 30.0]])
    np.testing.assert_allclose(image_box_overlaps(boxes, query), [[50 / 150, 25 / 100, 0.0]])
    np.testing.assert_allclose(image_box_overlaps(boxes, query, over_first_area=True), [[0.5, 0.25, 0.0]])


def test_framewise_blocks_equal_per_frame_overlaps():
    rng = np.random.default_rng(2)
    counts, query_counts = [3, 0, 5, 2], [4, 2, 0, 6]
    boxes, query = random_boxes(rng, sum(counts)), random_boxes(rng, sum(query_counts))
    offsets, query_offsets = np.cumsum([0, *counts]), np.cumsum([0, *query_counts])
    flat, blocks = framewise_overlaps(BEV_IOU, boxes, offsets, query, query_offsets)
    assert len(flat) == blocks[-1] == sum(n * k for n, k in zip(counts, query_counts))
    for frame in range(len(counts)):
        block = flat[blocks[frame]:blocks[frame + 1]].reshape(counts[frame], query_counts[frame])
        expected = bev_box_overlaps(boxes[offsets[frame]:offsets[frame + 1]],
                                    query[query_offsets[frame]:query_offsets[frame + 1]])
        np.testing.assert_array_equal(block, expected)
    with pytest.raises(ValueError, match="frame counts differ"):
        framewise_overlaps(BEV_IOU, boxes, offsets, query, query_offsets[:-1])
