"""Transforms keep points and boxes consistent on real KITTI scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ada3d.datasets.transforms import (
    GlobalRotScaleTrans,
    LoadPointsFromFile,
    ObjectNameFilter,
    ObjectNoise,
    ObjectRangeFilter,
    Pack3DDetInputs,
    PointShuffle,
    PointsRangeFilter,
    RandomFlip3D,
)
from ada3d.datasets.transforms.box_collision import bev_corners, bev_overlaps
from ada3d.registry import DATASETS, TRANSFORMS
from ada3d.structures import Det3DDataSample, points_in_boxes

LOAD = [dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True)]


@pytest.fixture(scope="module")
def scenes(prepared_kitti):
    """Loaded samples of 000076 (nine pedestrians and cyclists close together) and 000008 (six cars)."""
    dataset = DATASETS.build(dict(type="KittiDataset", data_root=str(prepared_kitti),
                                  ann_file="kitti_infos_trainval.pkl", pipeline=LOAD))
    return {"000076": dataset[0], "000008": dataset[2]}


@pytest.fixture(params=["000076", "000008"])
def scene(request, scenes):
    sample = scenes[request.param]
    return {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in sample.items()}


def _shrunk(boxes: np.ndarray, margin: float = 1e-3) -> np.ndarray:
    """Boxes a hair smaller, so membership tests do not hinge on float rounding at the faces."""
    smaller = boxes.astype(np.float64).copy()
    smaller[:, 3:6] -= 2 * margin
    smaller[:, 2] += margin
    return smaller


def _membership(sample: dict, margin: float = 1e-3) -> np.ndarray:
    return points_in_boxes(sample["points"].astype(np.float64), _shrunk(sample["gt_bboxes_3d"], margin))


def _assert_points_stay_in_their_boxes(before: np.ndarray, after_sample: dict) -> None:
    """Every point strictly inside a box before is inside the moved box after (tolerance 0.1 mm)."""
    after = points_in_boxes(after_sample["points"].astype(np.float64), _shrunk(after_sample["gt_bboxes_3d"], -1e-4))
    assert before.any() and after[before].all()


def test_flips_mirror_points_and_boxes_together(scene):
    original = {key: scene[key].copy() for key in ("points", "gt_bboxes_3d")}
    before = _membership(scene)
    flipped = RandomFlip3D(flip_ratio_bev_horizontal=1.0, flip_ratio_bev_vertical=1.0)(scene)
    _assert_points_stay_in_their_boxes(before, flipped)
    assert (flipped["pcd_horizontal_flip"], flipped["pcd_vertical_flip"], flipped["flip"]) == (True, True, True)
    assert flipped["transformation_3d_flow"] == ["HF", "VF"]
    np.testing.assert_array_equal(flipped["points"][:, :2], -original["points"][:, :2])
    twice = RandomFlip3D(flip_ratio_bev_horizontal=1.0, flip_ratio_bev_vertical=1.0)(flipped)
    np.testing.assert_array_equal(twice["points"], original["points"])
    np.testing.assert_allclose(twice["gt_bboxes_3d"][:, :6], original["gt_bboxes_3d"][:, :6])
    np.testing.assert_allclose(np.cos(twice["gt_bboxes_3d"][:, 6] - original["gt_bboxes_3d"][:, 6]), 1, atol=1e-6)
    unflipped = RandomFlip3D(flip_ratio_bev_horizontal=0.0)(twice)
    assert not unflipped["pcd_horizontal_flip"] and unflipped["flip_direction"] is None


def test_global_rotation_scaling_translation(scene):
    original = scene["points"].copy()
    before = _membership(scene)
    torch.manual_seed(3)
    moved = GlobalRotScaleTrans(rot_range=[-3.1, 3.1], scale_ratio_range=[0.8, 1.2], translation_std=[1, 1, 0.3])(scene)
    _assert_points_stay_in_their_boxes(before, moved)
    expected = original[:, :3] @ moved["pcd_rotation"] * moved["pcd_scale_factor"] + moved["pcd_trans"]
    np.testing.assert_allclose(moved["points"][:, :3], expected, atol=1e-4)
    assert moved["transformation_3d_flow"] == ["R", "S", "T"] and moved["pcd_scale_factor"] != 1.0
    cos, sin = np.cos(moved["pcd_rotation_angle"]), np.sin(moved["pcd_rotation_angle"])
    np.testing.assert_allclose(moved["pcd_rotation"][:2, :2], [[cos, sin], [-sin, cos]], atol=1e-6)


def test_object_noise_moves_objects_with_their_points_without_collisions(scene):
    boxes_before = scene["gt_bboxes_3d"].copy()
    before = _membership(scene)
    torch.manual_seed(0)
    noisy = ObjectNoise(translation_std=[1.0, 1.0, 0.5], rot_range=[-0.78539816, 0.78539816], num_try=100)(scene)
    boxes = noisy["gt_bboxes_3d"]
    assert np.abs(boxes - boxes_before).max(axis=1).min() > 0  # every object moved
    _assert_points_stay_in_their_boxes(before, noisy)
    overlaps = bev_overlaps(bev_corners(boxes), bev_corners(boxes))
    np.fill_diagonal(overlaps, False)
    assert not overlaps.any()
    np.testing.assert_array_equal(boxes[:, 3:6], boxes_before[:, 3:6])


def test_object_noise_without_room_leaves_objects_in_place():
    # two boxes that touch: any motion of one overlaps the other unless it moves away, which a zero std forbids
    boxes = np.array([[0, 0, 0, 4, 2, 1.5, 0], [4, 0, 0, 4, 2, 1.5, 0]], dtype=np.float32)
    points = np.array([[0.5, 0.2, 0.5, 0], [4.5, -0.2, 0.5, 0]], dtype=np.float32)
    sample = dict(points=points.copy(), gt_bboxes_3d=boxes.copy(), gt_labels_3d=np.array([2, 2]))
    out = ObjectNoise(translation_std=[0, 0, 0], rot_range=[0.5, 0.6], num_try=20)(sample)
    np.testing.assert_array_equal(out["gt_bboxes_3d"], boxes)
    np.testing.assert_array_equal(out["points"], points)


def test_augmentation_is_reproducible_under_torch_seed(scenes):
    steps = [ObjectNoise(), RandomFlip3D(flip_ratio_bev_horizontal=0.5), GlobalRotScaleTrans(), PointShuffle()]
    outputs = []
    for _ in range(2):
        torch.manual_seed(11)
        sample = {key: np.array(value) for key, value in scenes["000076"].items() if key.startswith(("gt_", "points"))}
        for step in steps:
            sample = step(sample)
        outputs.append(sample)
    np.testing.assert_array_equal(outputs[0]["points"], outputs[1]["points"])
    np.testing.assert_array_equal(outputs[0]["gt_bboxes_3d"], outputs[1]["gt_bboxes_3d"])


def test_range_and_name_filters():
    points = np.array([[0.0, 0, 0, 1], [0.01, 0, 0, 1], [70.39, 39.9, 0.9, 1], [70.4, 0, 0, 1], [5, 0, -3.5, 1]],
                      dtype=np.float32)
    kept = PointsRangeFilter([0, -40, -3, 70.4, 40, 1])(dict(points=points))["points"]
    np.testing.assert_array_equal(kept, points[[1, 2]])  # the range is open on both sides

    boxes = np.array([[10, 0, -1, 4, 2, 1.5, 7.0], [-1, 0, -1, 4, 2, 1.5, 0], [10, 41, -1, 4, 2, 1.5, 0],
                      [69, -39, -1, 4, 2, 1.5, -4.0]], dtype=np.float32)
    sample = ObjectRangeFilter([0, -40, -3, 70.4, 40, 1])(dict(gt_bboxes_3d=boxes, gt_labels_3d=np.arange(4)))
    assert sample["gt_labels_3d"].tolist() == [0, 3]
    np.testing.assert_allclose(sample["gt_bboxes_3d"][:, 6], [7.0 - 2 * np.pi, -4.0 + 2 * np.pi], atol=1e-6)

    labels = np.array([0, 2, -1, 3, 1])
    named = ObjectNameFilter(["Pedestrian", "Cyclist", "Car"])(dict(gt_bboxes_3d=np.zeros((5, 7)), gt_labels_3d=labels))
    assert named["gt_labels_3d"].tolist() == [0, 2, 1] and named["gt_bboxes_3d"].shape == (3, 7)


def test_point_shuffle_permutes(scene):
    original = scene["points"].copy()
    shuffled = PointShuffle()(scene)["points"]
    assert not np.array_equal(shuffled, original)
    np.testing.assert_array_equal(np.unique(shuffled, axis=0), np.unique(original, axis=0))


def test_pack_after_a_training_pipeline(scenes):
    sample = {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in scenes["000008"].items()}
    torch.manual_seed(1)
    for step in (RandomFlip3D(flip_ratio_bev_horizontal=1.0), GlobalRotScaleTrans()):
        sample = step(sample)
    packed = TRANSFORMS.build(dict(type="Pack3DDetInputs", keys=["points", "gt_bboxes_3d", "gt_labels_3d"]))(sample)
    points = packed["inputs"]["points"]
    assert points.dtype == torch.float32 and points.shape == sample["points"].shape
    data_sample = packed["data_samples"]
    assert isinstance(data_sample, Det3DDataSample)
    gt = data_sample.gt_instances_3d
    assert gt.bboxes_3d.dtype == torch.float32 and gt.bboxes_3d.shape == (6, 7)
    assert gt.labels_3d.dtype == torch.long and gt.labels_3d.tolist() == [2] * 6
    meta = data_sample.metainfo
    assert (meta["frame_idx"], meta["img_shape"], meta["flip"], meta["pcd_horizontal_flip"]) == (8, (375, 1242), True,
                                                                                                 True)
    assert meta["lidar2cam"].shape == (4, 4) and meta["cam2img"].shape == (4, 4)
    assert {"pcd_rotation", "pcd_rotation_angle", "pcd_scale_factor", "pcd_trans", "lidar_path"} <= set(meta)
    with pytest.raises(ValueError, match="cannot pack"):
        Pack3DDetInputs(keys=["points", "img"])


def test_load_points_from_file_options_and_errors(tmp_path, logged):
    path = tmp_path / "scan.bin"
    points = np.arange(40, dtype=np.float32).reshape(8, 5)
    points[2, 1] = np.nan
    points[5, 4] = np.inf  # an unused column: kept
    points.tofile(path)
    load = LoadPointsFromFile(load_dim=5, use_dim=[0, 1, 2, 3])
    loaded = load(dict(lidar_points=dict(lidar_path=path)))["points"]
    np.testing.assert_array_equal(loaded, points[[0, 1, 3, 4, 5, 6, 7], :4])
    assert any(message.endswith("scan.bin: dropped 1 of 8 points with NaN/inf values") for message in logged)
    squashed = LoadPointsFromFile(load_dim=5, use_dim=4, norm_intensity=True)(dict(lidar_points=dict(lidar_path=path)))
    np.testing.assert_allclose(squashed["points"][:, 3], np.tanh(loaded[:, 3]))

    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.bin: no points to load \(0 stored"):
        LoadPointsFromFile()(dict(lidar_points=dict(lidar_path=tmp_path / "empty.bin")))
    empty = LoadPointsFromFile(allow_empty=True)(dict(lidar_points=dict(lidar_path=tmp_path / "empty.bin")))
    assert empty["points"].shape == (0, 4)
    with pytest.raises(ValueError, match=r"scan\.bin: size 160 bytes is not a multiple of 24"):
        LoadPointsFromFile(load_dim=6, use_dim=4)(dict(lidar_points=dict(lidar_path=path)))
    with pytest.raises(ValueError, match="use_dim"):
        LoadPointsFromFile(load_dim=4, use_dim=[0, 1, 4])
    with pytest.raises(ValueError, match="LiDAR"):
        LoadPointsFromFile(coord_type="DEPTH")
    with pytest.raises(ValueError, match="only local files"):
        LoadPointsFromFile(backend_args=dict(backend="petrel"))
    assert LoadPointsFromFile(backend_args=None).load_dim == 4  # mmdet3d configs pass backend_args=None


def _segments_cross(p, q, r, s) -> bool:
    def orientation(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return orientation(p, q, r) != orientation(p, q, s) and orientation(r, s, p) != orientation(r, s, q)


def _inside(point, quad) -> bool:
    """Strictly inside a quadrilateral with counter-clockwise corners: left of every edge."""
    edges, offsets = np.roll(quad, -1, axis=0) - quad, point - quad
    return bool((edges[:, 0] * offsets[:, 1] - edges[:, 1] * offsets[:, 0] > 0).all())


def test_bev_overlap_matches_an_edge_crossing_reference():
    rng = np.random.default_rng(0)
    boxes = np.concatenate([rng.uniform(-6, 6, (60, 2)), np.zeros((60, 1)), rng.uniform(0.5, 5, (60, 2)),
                            np.ones((60, 1)), rng.uniform(-np.pi, np.pi, (60, 1))], axis=1)
    corners = bev_corners(boxes)
    ours = bev_overlaps(corners, corners)
    for a in range(60):
        for b in range(60):
            edges_a = [(corners[a][i], corners[a][(i + 1) % 4]) for i in range(4)]
            edges_b = [(corners[b][j], corners[b][(j + 1) % 4]) for j in range(4)]
            crossing = any(_segments_cross(*edge_a, *edge_b) for edge_a in edges_a for edge_b in edges_b)
            expected = a == b or crossing or _inside(corners[a][0], corners[b]) or _inside(corners[b][0], corners[a])
            assert ours[a, b] == expected, (a, b)
    assert 0.1 < ours.mean() < 0.9
