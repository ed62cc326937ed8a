"""KittiDataset over infos prepared from the real demo frames."""

from __future__ import annotations

import numpy as np
import pytest

from ada3d.datasets import KittiDataset
from ada3d.datasets.io import load_points
from ada3d.registry import DATASETS
from ada3d.structures import Det3DDataSample, lidar_to_camera_boxes, points_in_boxes

LOAD = [dict(type="LoadPointsFromFile", coord_type="LIDAR", load_dim=4, use_dim=4),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True)]


def _dataset(root, **kwargs) -> KittiDataset:
    return DATASETS.build(dict(type="KittiDataset", data_root=str(root), ann_file="kitti_infos_trainval.pkl", **kwargs))


def test_targets_are_lidar_boxes_of_the_chosen_classes(prepared_kitti):
    dataset = _dataset(prepared_kitti, pipeline=LOAD)
    assert len(dataset) == 3 and dataset.metainfo["classes"] == ("Pedestrian", "Cyclist", "Car")
    labels = [dataset.get_data_info(i)["ann_info"]["gt_labels_3d"].tolist() for i in range(3)]
    # 000076: 8 pedestrians (0) and a cyclist (1); 000001: the Truck is not a chosen class; 000008: 6 cars (2)
    assert labels == [[0, 0, 0, 1, 0, 0, 0, 0, 0], [2, 1], [2] * 6]
    for index in range(3):
        sample = dataset[index]
        info = dataset.get_data_info(index)
        boxes = sample["gt_bboxes_3d"]
        assert boxes.dtype == np.float32 and boxes.shape == (len(labels[index]), 7)
        assert (points_in_boxes(sample["points"], boxes).sum(axis=0) > 0).all()  # every object holds LiDAR points
        cared = [inst for inst in info["instances"] if inst["bbox_label_3d"] in (0, 1, 2)]
        back = lidar_to_camera_boxes(boxes.astype(np.float64), info["lidar2cam"])
        np.testing.assert_allclose(back[:, :6], [inst["bbox_3d"][:6] for inst in cared], atol=1e-5)
        annotations = info["ann_info"]
        assert annotations["difficulty"].tolist() == [inst["difficulty"] for inst in cared]
        assert annotations["gt_bboxes"].shape == (len(cared), 4)
    first = dataset.get_data_info(0)
    assert (first["sample_idx"], first["frame_idx"], first["img_shape"]) == (0, 76, (374, 1238))
    assert first["lidar_path"].endswith("training/velodyne_reduced/000076.bin")
    assert first["img_path"].endswith("training/image_2/000076.png")


def test_class_choice_maps_info_labels(prepared_kitti):
    dataset = _dataset(prepared_kitti, metainfo=dict(classes=("Truck", "Car")))
    assert dataset.get_data_info(1)["ann_info"]["gt_labels_3d"].tolist() == [0, 1]  # 000001: Truck, Car


def test_filter_empty_gt_draws_another_sample(prepared_kitti):
    dataset = _dataset(prepared_kitti, pipeline=LOAD, metainfo=dict(classes=("Pedestrian",)))
    assert dataset.prepare_data(1) is None  # 000001 has no pedestrian
    assert dataset[1]["frame_idx"] == 76  # the only frame with pedestrians
    kept = _dataset(prepared_kitti, pipeline=LOAD, metainfo=dict(classes=("Pedestrian",)), filter_empty_gt=False)
    assert len(kept[1]["gt_labels_3d"]) == 0


def test_test_mode_packs_evaluation_annotations(prepared_kitti):
    pipeline = [LOAD[0], dict(type="Pack3DDetInputs", keys=["points"])]
    dataset = _dataset(prepared_kitti, pipeline=pipeline, test_mode=True)
    info = dataset.get_data_info(2)
    assert "ann_info" not in info and info["eval_ann_info"]["gt_labels_3d"].tolist() == [2] * 6
    sample = dataset[2]
    assert isinstance(sample["data_samples"], Det3DDataSample)
    assert sample["data_samples"].eval_ann_info["gt_bboxes_3d"].shape == (6, 7)
    assert len(sample["data_samples"].gt_instances_3d) == 0
    points = load_points(prepared_kitti / "training" / "velodyne_reduced" / "000008.bin")
    np.testing.assert_array_equal(sample["inputs"]["points"].numpy(), points)
    no_eval = _dataset(prepared_kitti, pipeline=pipeline, test_mode=True, load_eval_anns=False)
    assert "eval_ann_info" not in no_eval.get_data_info(2)


def test_bad_dataset_arguments(prepared_kitti):
    with pytest.raises(FileNotFoundError, match=r"kitti_infos_nothing\.pkl not found: write it with tools/create"):
        DATASETS.build(dict(type="KittiDataset", data_root=str(prepared_kitti), ann_file="kitti_infos_nothing.pkl"))
    with pytest.raises(ValueError, match="reads LiDAR only"):
        _dataset(prepared_kitti, modality=dict(use_lidar=True, use_camera=True))
