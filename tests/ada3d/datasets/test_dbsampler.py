"""GT sampling from the database built of the real demo frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ada3d.datasets.io import load_points
from ada3d.datasets.transforms import DataBaseSampler, ObjectSample
from ada3d.datasets.transforms.box_collision import bev_corners, bev_overlaps
from ada3d.registry import DATASETS
from ada3d.structures import points_in_boxes

CLASSES = ("Pedestrian", "Cyclist", "Car")


def _sorted_rows(points: np.ndarray) -> np.ndarray:
    return points[np.lexsort(points.T[::-1])]


def _sampler_config(root, **overrides) -> dict:
    config = dict(data_root=str(root), info_path=str(root / "kitti_dbinfos_train.pkl"), rate=1.0,
                  prepare=dict(filter_by_difficulty=[-1], filter_by_min_points=dict(Pedestrian=5, Cyclist=5, Car=5)),
                  classes=CLASSES, sample_groups=dict(Car=8, Pedestrian=6, Cyclist=4))
    return config | overrides


@pytest.fixture
def scene(prepared_kitti):
    """The loaded val frame 000008 (six cars), not part of the database."""
    load = [dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
            dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True)]
    dataset = DATASETS.build(dict(type="KittiDataset", data_root=str(prepared_kitti),
                                  ann_file="kitti_infos_val.pkl", pipeline=load))
    return dataset[0]


def test_pasted_objects_bring_their_points_and_do_not_collide(prepared_kitti, scene):
    original_boxes, original_points = scene["gt_bboxes_3d"].copy(), scene["points"].copy()
    counts_before = points_in_boxes(original_points, original_boxes).sum(axis=0)
    torch.manual_seed(0)
    transform = ObjectSample(db_sampler=_sampler_config(prepared_kitti))
    out = transform(scene)
    boxes, labels = out["gt_bboxes_3d"], out["gt_labels_3d"]
    pasted = boxes[len(original_boxes):]
    assert len(pasted) >= 3 and boxes.dtype == np.float32
    np.testing.assert_array_equal(boxes[: len(original_boxes)], original_boxes)

    overlaps = bev_overlaps(bev_corners(boxes), bev_corners(boxes))
    np.fill_diagonal(overlaps, False)
    assert not overlaps[len(original_boxes):].any()  # pasted vs every other box

    # each pasted box holds exactly the points of its database object; the scene's points there are gone
    database = {tuple(entry["box3d_lidar"]): entry for group in transform.db_sampler.samplers.values()
                for entry in group.entries}
    inside = points_in_boxes(out["points"], pasted)
    for k, box in enumerate(pasted):
        entry = database[tuple(box)]
        assert CLASSES[labels[len(original_boxes) + k]] == entry["name"]
        assert entry["difficulty"] != -1 and entry["num_points_in_gt"] >= 5
        object_points = load_points(prepared_kitti / entry["path"])
        object_points[:, :3] += box[:3]
        np.testing.assert_array_equal(_sorted_rows(out["points"][inside[:, k]]), _sorted_rows(object_points))
    np.testing.assert_array_equal(points_in_boxes(out["points"], original_boxes).sum(axis=0), counts_before)


def test_group_sizes_count_the_objects_already_in_the_scene(prepared_kitti, scene):
    sampler = DataBaseSampler(**_sampler_config(prepared_kitti, sample_groups=dict(Car=6)))
    assert sampler.sample_all(scene["gt_bboxes_3d"], scene["gt_labels_3d"]) is None  # six cars already
    nothing = ObjectSample(db_sampler=_sampler_config(prepared_kitti, rate=0.0))(dict(scene))
    np.testing.assert_array_equal(nothing["points"], scene["points"])


def test_database_filters(prepared_kitti):
    sampler = DataBaseSampler(**_sampler_config(
        prepared_kitti, prepare=dict(filter_by_difficulty=[-1, 2], filter_by_min_points=dict(Pedestrian=300))))
    kept = sampler.samplers["Pedestrian"].entries
    assert kept and all(entry["difficulty"] in (0, 1) and entry["num_points_in_gt"] >= 300 for entry in kept)
    assert len(kept) < 8


def test_sampler_configuration_errors(prepared_kitti, tmp_path):
    with pytest.raises(ValueError, match="unknown filters"):
        DataBaseSampler(**_sampler_config(prepared_kitti, prepare=dict(filter_by_height=[1])))
    with pytest.raises(ValueError, match=r"names classes \['Van'\]"):
        DataBaseSampler(**_sampler_config(prepared_kitti, sample_groups=dict(Van=3)))
    with pytest.raises(ValueError, match=r"has no objects of \['Van'\]"):
        DataBaseSampler(**_sampler_config(prepared_kitti, classes=("Van",), sample_groups=dict(Van=3)))
    with pytest.raises(FileNotFoundError, match=r"nothing\.pkl not found"):
        DataBaseSampler(**_sampler_config(prepared_kitti, info_path=str(tmp_path / "nothing.pkl")))


def test_bev_overlaps_equals_a_corner_and_edge_crossing_test():
    # the compiled separating-axis test against an independent one: two rectangles overlap iff a corner of one
    # lies inside the other or two of their edges cross
    rng = np.random.default_rng(3)
    boxes = np.concatenate(
        [rng.uniform(-6, 6, (60, 2)), np.zeros((60, 1)), rng.uniform(0.5, 4, (60, 3)), rng.uniform(-4, 4, (60, 1))],
        axis=1,
    )
    a, b = bev_corners(boxes[:30]), bev_corners(boxes[30:])
    got = bev_overlaps(a, b)

    def inside(point, quad):
        edges = np.roll(quad, -1, axis=0) - quad
        cross = edges[:, 0] * (point[1] - quad[:, 1]) - edges[:, 1] * (point[0] - quad[:, 0])
        return (cross >= 0).all() or (cross <= 0).all()

    def crosses(p, q, r, s):
        def side(u, v, w):
            return np.sign((v[0] - u[0]) * (w[1] - u[1]) - (v[1] - u[1]) * (w[0] - u[0]))
        return side(p, q, r) != side(p, q, s) and side(r, s, p) != side(r, s, q)

    expected = np.array([[
        any(inside(c, qb) for c in qa) or any(inside(c, qa) for c in qb)
        or any(crosses(qa[i], qa[(i + 1) % 4], qb[j], qb[(j + 1) % 4]) for i in range(4) for j in range(4))
        for qb in b] for qa in a])
    assert 20 < expected.sum() < expected.size - 20
    np.testing.assert_array_equal(got, expected)
