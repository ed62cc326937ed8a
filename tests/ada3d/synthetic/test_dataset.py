"""The KITTI tree written by generate_kitti_dataset: complete, readable, deterministic."""

import struct
import zlib

import numpy as np
import pytest

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.datasets.synthetic import generate_kitti_dataset, split_frames
from ada3d.datasets.synthetic.camera import IMAGE_SHAPE
from ada3d.structures import camera_to_lidar_boxes, points_in_boxes

NUM_FRAMES = 4


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthkitti")
    generate_kitti_dataset(root, NUM_FRAMES, seed=5, val_fraction=0.25)
    return root


def _read_png(path):
    """``(width, height, pixels [H, W, 3])`` of an 8-bit RGB PNG with one IDAT chunk per frame."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (depth, colour) == (8, 2)
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        tag, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        assert struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])[0] == zlib.crc32(tag + body)
        chunks[tag] = chunks.get(tag, b"") + body
        offset += 12 + length
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, width * 3 + 1)
    assert (rows[:, 0] == 2).all()  # "Up" filter on every row
    pixels = np.cumsum(rows[:, 1:].astype(np.int64), axis=0) % 256
    return width, height, pixels.reshape(height, width, 3)


def test_tree_is_complete_and_readable(tree):
    training = tree / "training"
    for index in range(NUM_FRAMES):
        name = f"{index:06d}"
        points = load_points(training / "velodyne" / f"{name}.bin")
        labels = read_label_file(training / "label_2" / f"{name}.txt")
        calib = read_calib_file(training / "calib" / f"{name}.txt")
        width, height, pixels = _read_png(training / "image_2" / f"{name}.png")
        assert (height, width) == IMAGE_SHAPE and pixels.std() > 10
        assert len(points) > 90_000
        np.testing.assert_allclose(calib.P2[0, 0], 721.5377)
        for obj in labels:
            if obj.name == "DontCare":
                continue
            box = camera_to_lidar_boxes(obj.camera_box[None], calib.lidar2cam)
            assert points_in_boxes(points, box).sum() > 0, f"{name}: {obj.name} without points"
    splits = {name: (tree / "ImageSets" / f"{name}.txt").read_text().split() for name in ("train", "val", "trainval")}
    assert len(splits["val"]) == 1 and len(splits["train"]) == NUM_FRAMES - 1
    assert sorted(splits["train"] + splits["val"]) == splits["trainval"] == [f"{i:06d}" for i in range(NUM_FRAMES)]


def test_frames_depend_only_on_seed_and_index(tree, tmp_path):
    # frames 2 and 3 alone, by two worker processes, match the same frames of the full run
    generate_kitti_dataset(tmp_path, NUM_FRAMES, seed=5, workers=2)
    for index in (2, 3):
        for sub, suffix in (("velodyne", "bin"), ("label_2", "txt"), ("calib", "txt"), ("image_2", "png")):
            name = f"training/{sub}/{index:06d}.{suffix}"
            assert (tmp_path / name).read_bytes() == (tree / name).read_bytes(), name
    other = tmp_path / "other"
    generate_kitti_dataset(other, 1, seed=6)
    assert (other / "training/velodyne/000000.bin").read_bytes() != (tree / "training/velodyne/000000.bin").read_bytes()


def test_splits_and_bad_arguments(tmp_path):
    train, val = split_frames(100, seed=0, val_fraction=0.25)
    assert len(val) == 25 and sorted(train + val) == list(range(100))
    assert split_frames(1, seed=0, val_fraction=0.25) == ([0], [])
    for kwargs, message in (({"num_frames": 0}, "num_frames"), ({"val_fraction": 1.0}, "val_fraction"),
                            ({"workers": 0}, "workers"), ({"seed": -1}, "seed")):
        arguments = {"num_frames": 1, "seed": 0, **kwargs}
        with pytest.raises(ValueError, match=message):
            generate_kitti_dataset(tmp_path, **arguments)
