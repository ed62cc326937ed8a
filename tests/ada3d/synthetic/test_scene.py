"""Scene layout: road users that do not overlap, stand on the ground, have KITTI-like sizes, and parts
that stay inside their labelled box."""

import numpy as np
import pytest

from ada3d.datasets.synthetic.footprints import FootprintSet, rectangle_corners, rectangles_overlap
from ada3d.datasets.synthetic.objects import SIZE_STATS
from ada3d.datasets.synthetic.primitives import COS as COL_COS
from ada3d.datasets.synthetic.primitives import CX, CY, HALF_L, HALF_W, OBJECT, SIN, Z0, Z1
from ada3d.datasets.synthetic.scene import generate_scene
from ada3d.datasets.synthetic.scenery import SCENE_KINDS


@pytest.fixture(scope="module")
def scenes():
    return [generate_scene(np.random.default_rng([3, i]), kind=SCENE_KINDS[i % 3]) for i in range(9)]


def test_rectangle_overlap_test():
    square = np.array([0.0, 0.0, 2.0, 2.0, 0.0])
    others = np.array([[2.5, 0.0, 2.0, 2.0, 0.0],  # 0.5 m gap
                       [2.3, 0.0, 2.0, 2.0, np.pi / 4],  # rotated: its corner reaches x = 0.89
                       [0.0, 3.0, 2.0, 4.2, 0.0],  # overlaps by 0.1 m
                       [40.0, 0.0, 2.0, 2.0, 0.0]])
    np.testing.assert_array_equal(rectangles_overlap(square, others), [False, True, True, False])
    taken = FootprintSet()
    taken.add(square)
    assert not taken.is_free(others[0], margin=0.6) and taken.is_free(others[0], margin=0.4)


def test_no_two_objects_overlap_and_none_overlaps_the_recording_car(scenes):
    for scene in scenes:
        boxes = np.stack([obj.box for obj in scene.objects])
        footprints = boxes[:, [0, 1, 3, 4, 6]]
        for i in range(len(footprints)):
            assert not rectangles_overlap(footprints[i], np.delete(footprints, i, axis=0)).any()
        assert not rectangles_overlap(np.array([-0.3, 0.0, 4.8, 1.9, 0.0]), footprints).any()


def test_objects_stand_on_the_ground_with_kitti_sizes(scenes):
    names = set()
    for scene in scenes:
        for obj in scene.objects:
            names.add(obj.name)
            x, y, z, length, width, height, _ = obj.box
            stats = SIZE_STATS[obj.name]
            assert np.all(np.array([length, width, height]) >= stats.low)
            assert np.all(np.array([length, width, height]) <= stats.high)
            corners = rectangle_corners(np.array([x, y, length, width, obj.box[6]]))[0]
            under = scene.ground.height(np.append(corners[:, 0], x), np.append(corners[:, 1], y))
            assert z == pytest.approx(under.min())  # it stands on the lowest point of its footprint
            assert under[-1] - z <= 0.05 * length + 0.02
    assert {"Car", "Pedestrian", "Cyclist"} <= names
    cars = np.array([obj.box[3:6] for scene in scenes for obj in scene.objects if obj.name == "Car"])
    np.testing.assert_allclose(cars.mean(0), SIZE_STATS["Car"].mean, atol=0.25)


def _local(points_xy, box):
    """Points ``[N, 2]`` in the frame of a LiDAR box (x along its length)."""
    offset = points_xy - box[:2]
    cos, sin = np.cos(box[6]), np.sin(box[6])
    return np.stack([offset[:, 0] * cos + offset[:, 1] * sin, -offset[:, 0] * sin + offset[:, 1] * cos], 1)


def test_object_parts_stay_inside_their_box(scenes):
    for scene in scenes:
        prims = scene.primitives
        for index, obj in enumerate(scene.objects):
            parts = prims[prims[:, OBJECT] == index]
            assert len(parts) >= (2 if obj.name == "Misc" else 4)
            half = obj.box[3:5] / 2 + 1e-6
            boxes, round_parts = parts[parts[:, HALF_W] > 0], parts[parts[:, HALF_W] == 0]
            for su, sv in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                corners = np.stack([
                    boxes[:, CX] + su * boxes[:, HALF_L] * boxes[:, COL_COS] - sv * boxes[:, HALF_W] * boxes[:, SIN],
                    boxes[:, CY] + su * boxes[:, HALF_L] * boxes[:, SIN] + sv * boxes[:, HALF_W] * boxes[:, COL_COS],
                ], 1)
                assert (np.abs(_local(corners, obj.box)) <= half).all(), obj.name
            centres = _local(round_parts[:, [CX, CY]], obj.box)  # cylinders and ellipsoids: centre + radius
            assert (np.abs(centres) + round_parts[:, HALF_L, None] <= half).all(), obj.name
            assert (parts[:, Z0] >= obj.box[2] - 1e-6).all() and (parts[:, Z1] <= obj.box[2] + obj.box[5] + 1e-6).all()


def test_scene_kinds_differ_and_unknown_kind_is_rejected(scenes):
    assert {scene.kind for scene in scenes} == set(SCENE_KINDS)
    assert any(len(scene.roads) == 2 for scene in scenes)  # crossings or T-junctions occur
    with pytest.raises(ValueError, match="scene kind"):
        generate_scene(np.random.default_rng(0), kind="desert")
