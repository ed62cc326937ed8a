import shutil

import numpy as np
import pytest

from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.structures import lidar_to_camera_boxes, points_in_boxes
from ada3d.visualization.loading import (
    KITTI_CLASSES,
    KITTI_POINT_CLOUD_RANGE,
    NUSCENES_POINT_CLOUD_RANGE,
    default_point_cloud_range,
    infer_point_dim,
    kitti_companion_files,
    kitti_frame_ids,
    kitti_lidar_boxes,
    load_frame_from_files,
    load_kitti_frame,
)
from tests.conftest import KITTI_DEMO_ROOT

SPLIT = KITTI_DEMO_ROOT / "training"


def _write(path, array):
    np.asarray(array, dtype=np.float32).tofile(path)
    return path


def test_point_dim_from_name_and_size(tmp_path):
    rng = np.random.default_rng(0)
    assert infer_point_dim(SPLIT / "velodyne" / "000008.bin") == 4
    assert infer_point_dim(_write(tmp_path / "a.pcd.bin", rng.random((8, 5)))) == 5
    assert infer_point_dim(_write(tmp_path / "only4.bin", rng.random((3, 4)))) == 4  # 48 bytes: not 20k
    assert infer_point_dim(_write(tmp_path / "only5.bin", rng.random((3, 5)))) == 5  # 60 bytes: not 16k


def test_point_dim_of_sizes_that_fit_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    nuscenes = np.concatenate([rng.random((8, 4)) * 50, rng.integers(0, 32, (8, 1))], 1)  # ring column
    assert infer_point_dim(_write(tmp_path / "nus.bin", nuscenes)) == 5
    assert infer_point_dim(_write(tmp_path / "kitti.bin", rng.random((10, 4)))) == 4  # 160 bytes, 8 x 20


def test_point_dim_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        infer_point_dim(tmp_path / "missing.bin")
    (tmp_path / "odd.bin").write_bytes(b"\0" * 44)
    with pytest.raises(ValueError, match=r"odd.bin: 44 bytes .* --load-dim"):
        infer_point_dim(tmp_path / "odd.bin")


def test_kitti_boxes_are_the_labels_in_lidar_and_hold_points():
    boxes, names = kitti_lidar_boxes(SPLIT / "label_2" / "000008.txt", SPLIT / "calib" / "000008.txt")
    objects = [obj for obj in read_label_file(SPLIT / "label_2" / "000008.txt") if obj.name != "DontCare"]
    assert names == [obj.name for obj in objects] == ["Car"] * 6
    lidar2cam = read_calib_file(SPLIT / "calib" / "000008.txt").lidar2cam
    np.testing.assert_allclose(lidar_to_camera_boxes(boxes.astype(np.float64), lidar2cam),
                               [obj.camera_box for obj in objects], atol=1e-4)
    points = load_kitti_frame(KITTI_DEMO_ROOT, 8).points
    assert (points_in_boxes(points, boxes).sum(0) > 10).all()


def test_kitti_frame_from_a_tree():
    assert kitti_frame_ids(KITTI_DEMO_ROOT) == ["000001", "000008", "000076"]
    view = load_kitti_frame(KITTI_DEMO_ROOT, 8)
    assert view.name == "000008" and view.points.shape == (122555, 4)
    assert view.class_names == KITTI_CLASSES and view.gt_labels.tolist() == [0] * 6
    assert load_kitti_frame(KITTI_DEMO_ROOT, "000008").gt_boxes.shape == (6, 7)
    with pytest.raises(FileNotFoundError, match="000002"):
        load_kitti_frame(KITTI_DEMO_ROOT, 2)
    with pytest.raises(FileNotFoundError, match="velodyne"):
        kitti_frame_ids(KITTI_DEMO_ROOT / "training")


def test_companion_files_and_scans_outside_a_tree(tmp_path):
    scan = SPLIT / "velodyne" / "000008.bin"
    assert kitti_companion_files(scan) == (SPLIT / "label_2" / "000008.txt", SPLIT / "calib" / "000008.txt")
    loose = shutil.copy(scan, tmp_path / "000008.bin")
    assert kitti_companion_files(loose) == (None, None)
    view = load_frame_from_files(loose)
    assert view.name == "000008" and len(view.gt_boxes) == 0
    with pytest.raises(ValueError, match="together with its calib"):
        load_frame_from_files(loose, label_path=SPLIT / "label_2" / "000008.txt")


def test_default_ranges(tmp_path):
    view = load_kitti_frame(KITTI_DEMO_ROOT, 8)
    assert default_point_cloud_range(view) == KITTI_POINT_CLOUD_RANGE
    five_columns = load_frame_from_files(_write(tmp_path / "x.pcd.bin", np.zeros((4, 5))))
    assert default_point_cloud_range(five_columns) == NUSCENES_POINT_CLOUD_RANGE
