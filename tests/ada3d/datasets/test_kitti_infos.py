"""Per-frame infos of real KITTI frames: difficulty, FOV crop, instances, image headers, split files."""

from __future__ import annotations

import numpy as np
import pytest

from ada3d.datasets.io import read_png_size
from ada3d.datasets.kitti_files import read_calib_file, read_image_set
from ada3d.datasets.kitti_infos import build_frame_info, camera_fov_mask, kitti_difficulty
from ada3d.structures import transform_points
from tests.ada3d.datasets.kitti_copy import DEMO_IMAGE_SHAPES, write_png
from tests.conftest import KITTI_DEMO_ROOT

TRAINING = KITTI_DEMO_ROOT / "training"


@pytest.mark.parametrize(
    ("height", "occluded", "truncated", "expected"),
    [
        (40.0, 0, 0.15, 0),  # exactly the easy limits (the devkit keeps height == 40)
        (39.99, 0, 0.0, 1),  # too small for easy
        (60.0, 1, 0.0, 1),  # partly occluded
        (60.0, 0, 0.16, 1),  # truncated beyond 15 %
        (25.0, 1, 0.3, 1),  # exactly the moderate limits
        (60.0, 2, 0.0, 2),  # largely occluded
        (60.0, 0, 0.5, 2),  # truncated up to 50 %
        (24.99, 0, 0.0, -1),  # below every minimum height
        (100.0, 3, 0.0, -1),  # occlusion unknown
        (100.0, 0, 0.51, -1),  # truncated beyond 50 %
    ],
)
def test_difficulty_limits(height, occluded, truncated, expected):
    assert kitti_difficulty([height], [occluded], [truncated]).tolist() == [expected]


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        # Truck 32.85 px -> moderate; Car 21.58 px -> none; Cyclist occluded 3 -> none; DontCare boxes < 25 px
        ("000001", [1, -1, -1, -1, -1, -1, -1]),
        # Car truncated 0.88 / occluded 3 -> none; occluded 1 -> moderate; 39.60 px unoccluded -> moderate;
        # 61.87 px unoccluded -> easy
        ("000008", [-1, 1, -1, 1, 1, 0, -1, -1, -1, -1]),
        # truncated 0.28 -> moderate; occluded 2 -> hard; the DontCare box (48.9 px, fields -1) -> easy, as mmdet3d
        ("000076", [1, 0, 2, 0, 1, 0, 0, 0, 2, 0]),
    ],
)
def test_difficulty_of_real_labels(frame, expected):
    info = build_frame_info(TRAINING, frame, True, DEMO_IMAGE_SHAPES[frame]).info
    assert [instance["difficulty"] for instance in info["instances"]] == expected


def test_fov_mask_keeps_points_that_project_into_the_image():
    calib = read_calib_file(TRAINING / "calib" / "000008.txt")
    height, width = DEMO_IMAGE_SHAPES["000008"]
    # back-project pixels at chosen depths into the LiDAR frame
    pixels = np.array([[0.5, 0.5], [width - 0.5, height - 0.5], [600, 180], [-3, 180], [600, height + 3], [600, 180],
                       [600, 180]])
    depths = np.array([10.0, 30.0, 99.0, 10.0, 10.0, 101.0, -5.0])
    p2 = calib.cam2img
    cam = np.linalg.solve(p2[:3, :3], (np.c_[pixels, np.ones(len(pixels))] * depths[:, None] - p2[:3, 3]).T).T
    points = transform_points(cam, np.linalg.inv(calib.lidar2cam))
    np.testing.assert_array_equal(
        camera_fov_mask(points, calib.lidar2cam, calib.cam2img, (height, width)),
        [True, True, True, False, False, False, False],
    )


def test_real_frame_info_layout():
    frame = build_frame_info(TRAINING, "000008", True, DEMO_IMAGE_SHAPES["000008"])
    info = frame.info
    assert info["sample_idx"] == 8
    camera = info["images"]["CAM2"]
    assert (camera["img_path"], camera["height"], camera["width"]) == ("000008.png", 375, 1242)
    for name in ("CAM0", "CAM1", "CAM2", "CAM3"):
        image = info["images"][name]
        np.testing.assert_allclose(image["lidar2img"], np.array(image["cam2img"]) @ np.array(camera["lidar2cam"]))
    calib = read_calib_file(TRAINING / "calib" / "000008.txt")
    np.testing.assert_allclose(camera["lidar2cam"], calib.lidar2cam)
    np.testing.assert_allclose(np.array(info["images"]["R0_rect"])[:3, :3], calib.R0_rect)
    assert info["lidar_points"]["lidar_path"] == "000008.bin" and info["lidar_points"]["num_pts_feats"] == 4
    assert frame.ignored_names == {"DontCare"}
    # the FOV crop keeps about a sixth of the 360-degree scan, all in front of the car
    assert 15000 < len(frame.fov_points) < 25000 and (frame.fov_points[:, 0] > 0).all()

    cars, dont_care = info["instances"][:6], info["instances"][6:]
    assert all(car["bbox_label"] == car["bbox_label_3d"] == 2 for car in cars)  # index of Car in KITTI_CLASSES
    assert [car["index"] for car in cars] == list(range(6)) and [car["group_id"] for car in cars] == list(range(6))
    assert all(car["num_lidar_pts"] > 0 and car["bbox_3d_isvalid"] and car["score"] == 0.0 for car in cars)
    first = cars[0]  # "Car 0.88 3 -0.69 0.00 192.37 402.31 374.00 1.60 1.57 3.23 -2.70 1.74 3.68 -1.29"
    assert first["bbox_3d"] == [-2.70, 1.74, 3.68, 3.23, 1.60, 1.57, -1.29]  # x, y, z, l, h, w, ry
    assert (first["truncated"], first["occluded"], first["alpha"]) == (0.88, 3, -0.69)
    for dont in dont_care:
        assert (dont["bbox_label"], dont["bbox_label_3d"], dont["index"], dont["num_lidar_pts"]) == (-1, -1, -1, -1)
        assert not dont["bbox_3d_isvalid"] and dont["bbox_3d"] == [-1000, -1000, -1000, -1, -1, -1, -10]
    # the projected 3D centre of an untruncated car lies inside its labelled 2D box, at about its camera depth
    fifth = cars[5]
    x1, y1, x2, y2 = fifth["bbox"]
    assert x1 < fifth["center_2d"][0] < x2 and y1 < fifth["center_2d"][1] < y2
    assert abs(fifth["depth"] - fifth["bbox_3d"][2]) < 0.01


def test_png_header_and_split_file_errors(tmp_path):
    write_png(tmp_path / "image.png", 374, 1238)
    assert read_png_size(tmp_path / "image.png") == (374, 1238)
    (tmp_path / "fake.png").write_bytes(b"GIF89a" + bytes(40))
    with pytest.raises(ValueError, match=r"fake\.png: not a PNG"):
        read_png_size(tmp_path / "fake.png")
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_png_size(tmp_path / "missing.png")

    (tmp_path / "train.txt").write_text("000003\n\n000001\n")
    assert read_image_set(tmp_path / "train.txt") == ["000003", "000001"]
    (tmp_path / "bad.txt").write_text("000003\n3.bin\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: .*'3\.bin'"):
        read_image_set(tmp_path / "bad.txt")
    (tmp_path / "twice.txt").write_text("000003\n000003\n")
    with pytest.raises(ValueError, match=r"twice\.txt: frame ids listed more than once: 000003"):
        read_image_set(tmp_path / "twice.txt")
