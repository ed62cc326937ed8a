"""KittiMetric end to end on an info file built from the real KITTI labels in demo/data/kitti."""

import mmengine
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.evaluation import KittiMetric
from ada3d.registry import METRICS
from ada3d.structures import Det3DDataSample, camera_to_lidar_boxes
from tests.conftest import KITTI_DEMO_ROOT

# mmdetection3d's v2 KITTI categories; its converter keeps DontCare regions with label -1
CATEGORIES = ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc")
CLASSES = ("Pedestrian", "Cyclist", "Car")  # what the detector's labels_3d index
IMAGE_SHAPES = {1: (375, 1242), 8: (375, 1242), 76: (374, 1238)}  # (height, width) of the real image_2 PNGs
# KITTI samples precision at one score threshold per TP at most: perfect detections reach AP 100 only with 41 or
# more valid ground truths per class and difficulty. Frame 000008 has one easy car, 000076 one easy cyclist.
COPIES = 41


def frame_info(frame: int, sample_idx: int) -> dict:
    calib = read_calib_file(KITTI_DEMO_ROOT / "training" / "calib" / f"{frame:06d}.txt")
    objects = read_label_file(KITTI_DEMO_ROOT / "training" / "label_2" / f"{frame:06d}.txt")
    height, width = IMAGE_SHAPES[frame]
    instances = [
        dict(bbox=obj.bbox.tolist(), bbox_label=CATEGORIES.index(obj.name) if obj.name in CATEGORIES else -1,
             bbox_3d=obj.camera_box.tolist(), truncated=obj.truncated, occluded=obj.occluded, alpha=obj.alpha)
        for obj in objects
    ]
    for instance in instances:
        instance["bbox_label_3d"] = instance["bbox_label"]
    camera = dict(cam2img=calib.P2.tolist(), lidar2cam=calib.lidar2cam.tolist(), height=height, width=width)
    return dict(sample_idx=sample_idx, images=dict(CAM2=camera), instances=instances)


@pytest.fixture(scope="module")
def infos():
    return [frame_info(frame, copy * 1000 + frame) for copy in range(COPIES) for frame in IMAGE_SHAPES]


@pytest.fixture
def ann_file(tmp_path, infos):
    categories = {name: label for label, name in enumerate(CATEGORIES)} | {"DontCare": -1}
    path = tmp_path / "kitti_infos_val.pkl"
    mmengine.dump(dict(metainfo=dict(categories=categories, dataset="kitti"), data_list=infos), path)
    return path


def ground_truth_as_predictions(info: dict) -> Det3DDataSample:
    """The info's objects of the detector's classes as LiDAR-box predictions with score 1."""
    label_names = dict(enumerate(CATEGORIES))
    kept = [inst for inst in info["instances"] if label_names.get(inst["bbox_label"]) in CLASSES]
    camera_boxes = np.array([inst["bbox_3d"] for inst in kept]).reshape(-1, 7)
    pred = InstanceData()
    pred.bboxes_3d = torch.as_tensor(camera_to_lidar_boxes(camera_boxes, np.array(info["images"]["CAM2"]["lidar2cam"])))
    pred.labels_3d = torch.tensor([CLASSES.index(label_names[inst["bbox_label"]]) for inst in kept], dtype=torch.long)
    pred.scores_3d = torch.ones(len(kept))
    sample = Det3DDataSample(metainfo=dict(sample_idx=info["sample_idx"]))
    sample.pred_instances_3d = pred
    return sample


def build_metric(ann_file, **kwargs):
    metric = METRICS.build(dict(type="KittiMetric", ann_file=str(ann_file), **kwargs))
    metric.dataset_meta = dict(classes=CLASSES)
    return metric


def test_ground_truth_as_predictions_scores_100(ann_file, infos):
    metric = build_metric(ann_file)
    metric.process({}, [ground_truth_as_predictions(info) for info in infos])
    results = metric.evaluate(len(infos))
    assert all(key.startswith("Kitti metric/") for key in results)
    results = {key.removeprefix("Kitti metric/"): value for key, value in results.items()}
    for key, value in results.items():
        if "_BEV_" in key or "_3D_" in key or key.startswith(("Car_", "Cyclist_")):
            # the labels' alpha (2 decimals) and the LiDAR-centre convention differ by a hair
            assert value == pytest.approx(100.0, abs=1e-2 if "_AOS_" in key else 1e-9), key
    # The 2D box of a prediction is its projected cuboid: wider than a walking person's labelled box, the
    # overlap with the label drops below 0.5 for two occluded pedestrians of frame 000076. Ignored for easy,
    # they leave two false positives next to the four matched easy pedestrians.
    assert results["Pedestrian_2D_AP40_easy"] == pytest.approx(100 * 4 / 6)


def test_result_files_for_submission(tmp_path, ann_file, infos):
    infos = [info for info in infos if info["sample_idx"] < 1000]  # one copy of each frame
    metric = build_metric(ann_file, submission_prefix=str(tmp_path / "submission"),
                          pklfile_prefix=str(tmp_path / "predictions"), format_only=True)
    samples = [ground_truth_as_predictions(info) for info in infos]
    # behind the car (x < 0) and beyond 70.4 m: outside the image or the evaluated range, so dropped
    dropped = InstanceData(bboxes_3d=torch.tensor([[-10.0, 0, -1, 4, 2, 1.5, 0], [75.0, 0, -1, 4, 2, 1.5, 0]]),
                           labels_3d=torch.tensor([2, 2]), scores_3d=torch.tensor([0.5, 0.5]))
    samples[0].pred_instances_3d = InstanceData.cat([samples[0].pred_instances_3d, dropped])
    metric.process({}, [sample.to_dict() for sample in samples])
    assert metric.evaluate(len(samples)) == {}

    written_files = sorted(path.name for path in (tmp_path / "submission").iterdir())
    assert written_files == ["000001.txt", "000008.txt", "000076.txt"]
    dumped = mmengine.load(tmp_path / "predictions.pkl")
    assert [anno["sample_idx"] for anno in dumped] == [1, 8, 76]
    for info in infos:
        written = read_label_file(tmp_path / "submission" / f"{info['sample_idx']:06d}.txt")
        labels = read_label_file(KITTI_DEMO_ROOT / "training" / "label_2" / f"{info['sample_idx']:06d}.txt")
        expected = [obj for obj in labels if obj.name in CLASSES]
        assert [obj.name for obj in written] == [obj.name for obj in expected]
        assert all(obj.score == 1.0 and obj.truncated == 0.0 and obj.occluded == 0 for obj in written)
        # 2 decimals in the file; rotation_y wrapped into [-pi, pi) as the labels are
        np.testing.assert_allclose([obj.camera_box for obj in written], [obj.camera_box for obj in expected],
                                   atol=0.006)
        np.testing.assert_allclose([obj.alpha for obj in written], [obj.alpha for obj in expected], atol=0.03)


def test_bad_configuration_and_input_are_named(tmp_path, ann_file, infos):
    with pytest.raises(ValueError, match="metric must be among"):
        KittiMetric(ann_file="x.pkl", metric="mAP")
    with pytest.raises(ValueError, match="needs 'bbox'"):
        KittiMetric(ann_file="x.pkl", metric=["3d", "aos"])
    with pytest.raises(ValueError, match="format_only needs"):
        KittiMetric(ann_file="x.pkl", format_only=True)
    with pytest.raises(ValueError, match="needs pred_instances_3d and sample_idx"):
        KittiMetric(ann_file="x.pkl").process({}, [{"sample_idx": 1}])

    missing = build_metric(tmp_path / "missing.pkl")
    missing.process({}, [ground_truth_as_predictions(infos[0])])
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        missing.evaluate(1)

    unknown = build_metric(ann_file)
    sample = ground_truth_as_predictions(infos[0])
    sample.set_metainfo(dict(sample_idx=424242))
    unknown.process({}, [sample])
    with pytest.raises(ValueError, match="no entry with sample_idx 424242"):
        unknown.evaluate(1)

    bad_label = build_metric(ann_file)
    sample = ground_truth_as_predictions(infos[0])
    sample.pred_instances_3d.labels_3d[:] = 7
    bad_label.process({}, [sample])
    with pytest.raises(ValueError, match="outside the 3 classes"):
        bad_label.evaluate(1)
