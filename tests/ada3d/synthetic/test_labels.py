"""Labels: who gets one, and their occlusion, truncation, alpha and 2D box."""

import numpy as np
import pytest

from ada3d.datasets.synthetic import SensorConfig
from ada3d.datasets.synthetic.camera import IMAGE_SHAPE, kitti_reference_calib
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.labels import MIN_LABEL_POINTS, make_labels, occlusion_level
from ada3d.datasets.synthetic.layout import GroundSurface
from ada3d.datasets.synthetic.lidar import simulate_scan
from ada3d.datasets.synthetic.objects import SceneObject, add_object_parts
from ada3d.datasets.synthetic.primitives import PrimitiveSet
from ada3d.datasets.synthetic.scene import Scene
from ada3d.structures import camera_to_lidar_boxes, lidar_boxes_to_image_boxes, limit_period, points_in_boxes


def _labelled(frame):
    return [obj for obj in frame.labels if obj.name != "DontCare"]


def _scene_with(objects, walls=()):
    """A flat empty street with ``objects`` and opaque ``walls`` (LiDAR boxes)."""
    rng = np.random.default_rng(0)
    primitives = PrimitiveSet()
    for wall in walls:
        primitives.add_box(wall, 0.3)
    for index, obj in enumerate(objects):
        add_object_parts(primitives, obj, index, rng)
    return Scene("city", GroundModel.create(1.73), [], GroundSurface(0.3, 0.7, 0.35, 0.4), primitives.to_array(),
                 list(objects))


def _labels_of(scene):
    scan = simulate_scan(scene, SensorConfig(), np.random.default_rng(1))
    counts = np.bincount(scan.object_index[scan.object_index >= 0], minlength=len(scene.objects))
    return make_labels(scene.objects, counts, scan.visible_rays, scan.rays_on_object, kitti_reference_calib(),
                       IMAGE_SHAPE), counts


def test_occlusion_levels_from_the_fraction_of_rays_blocked():
    assert [occlusion_level(v, 100) for v in (100, 86, 84, 51, 49, 16, 14)] == [0, 0, 1, 1, 2, 2, 3]
    car = SceneObject("Car", np.array([15.0, 0.0, -1.73, 4.0, 1.7, 1.5, 0.0]))
    (label,), counts = _labels_of(_scene_with([car]))
    assert label.name == "Car" and label.occluded == 0 and counts[0] > 300
    labels, counts = _labels_of(_scene_with([car], walls=[(10.0, 0.0, -1.8, 0.3, 8.0, 4.0, 0.0)]))
    assert counts[0] == 0 and labels == []  # hidden behind a wall: no points, no label
    (label,), _ = _labels_of(_scene_with([car], walls=[(10.0, -1.95, -1.8, 0.3, 4.0, 4.0, 0.0)]))
    assert label.occluded in (1, 2)  # a wall hides the right part of the car


def test_objects_outside_the_camera_get_no_label():
    behind = SceneObject("Car", np.array([-12.0, 0.0, -1.73, 4.0, 1.7, 1.5, 0.0]))
    beside = SceneObject("Car", np.array([0.5, 6.0, -1.73, 4.0, 1.7, 1.5, 0.0]))
    labels, counts = _labels_of(_scene_with([behind, beside]))
    assert counts.min() > 100 and labels == []


def test_every_label_has_points_and_far_objects_have_fewer(frames):
    distances, counts = [], []
    for frame in frames:
        labelled = _labelled(frame)
        if not labelled:
            continue
        boxes = camera_to_lidar_boxes(np.stack([obj.camera_box for obj in labelled]), frame.calib.lidar2cam)
        inside = points_in_boxes(frame.points, boxes).sum(0)
        assert (inside >= MIN_LABEL_POINTS - 2).all()  # range noise may push a point or two out of the box
        cars = np.array([obj.name == "Car" for obj in labelled])
        distances += np.hypot(boxes[cars, 0], boxes[cars, 1]).tolist()
        counts += inside[cars].tolist()
    assert len(distances) >= 15
    rank = lambda values: np.argsort(np.argsort(values))  # noqa: E731
    assert np.corrcoef(rank(distances), rank(counts))[0, 1] < -0.7  # fewer points farther away


def test_two_d_boxes_truncation_and_alpha_follow_the_projection(frames):
    checked = 0
    for frame in frames:
        for obj in _labelled(frame):
            box = camera_to_lidar_boxes(obj.camera_box[None], frame.calib.lidar2cam)
            assert obj.alpha == pytest.approx(
                float(limit_period(obj.rotation_y - np.arctan2(obj.location[0], obj.location[2]))), abs=1e-9)
            projected, in_front = lidar_boxes_to_image_boxes(box, frame.calib.lidar2cam, frame.calib.cam2img,
                                                             IMAGE_SHAPE)
            if not in_front[0]:  # partly behind the camera: cut at the near plane, so truncated
                assert obj.truncated > 0.3
            elif obj.truncated == 0.0:  # wholly inside the image: the 2D box is the projected 3D box
                np.testing.assert_allclose(obj.bbox, projected[0], atol=1e-6)
                checked += 1
            else:
                assert obj.bbox[0] == 0 or obj.bbox[2] == IMAGE_SHAPE[1] - 1 or obj.bbox[3] == IMAGE_SHAPE[0] - 1
    assert checked >= 10


def test_kitti_like_number_of_labels(frames):
    per_frame = [len(_labelled(frame)) for frame in frames]
    assert 2 <= np.mean(per_frame) <= 12  # KITTI: 5.4 labelled objects per frame on average
    names = {obj.name for frame in frames for obj in _labelled(frame)}
    assert "Car" in names and names <= {"Car", "Van", "Truck", "Pedestrian", "Cyclist", "Misc"}
