"""tools/create_data.py on copies of the real demo frames: infos, velodyne_reduced, GT database, bad input."""

from __future__ import annotations

import importlib.util
import pickle
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_converter import prepare_kitti
from ada3d.datasets.kitti_files import read_calib_file
from ada3d.datasets.kitti_infos import KITTI_CLASSES, camera_fov_mask, lidar_boxes_of
from ada3d.structures import points_in_boxes
from tests.ada3d.datasets.conftest import TRAIN, VAL
from tests.ada3d.datasets.kitti_copy import DEMO_IMAGE_SHAPES, copy_demo_kitti

spec = importlib.util.spec_from_file_location("create_data_cli", Path("tools/create_data.py"))
create_data_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(create_data_cli)


def _load(path: Path):
    with open(path, "rb") as file:
        return pickle.load(file)


def test_info_files_follow_the_splits(prepared_kitti):
    infos = {split: _load(prepared_kitti / f"kitti_infos_{split}.pkl") for split in ("train", "val", "trainval")}
    assert not (prepared_kitti / "kitti_infos_test.pkl").exists()  # no ImageSets/test.txt
    for content in infos.values():
        assert content["metainfo"] == dict(
            categories={**{name: i for i, name in enumerate(KITTI_CLASSES)}, "DontCare": -1},
            classes=KITTI_CLASSES, dataset="kitti", info_version="1.1",
        )
    frames = {split: [info["sample_idx"] for info in content["data_list"]] for split, content in infos.items()}
    assert frames == {"train": [76, 1], "val": [8], "trainval": [76, 1, 8]}  # split-file order, train + val
    assert infos["trainval"]["data_list"][0] == infos["train"]["data_list"][0]


def test_reduced_clouds_are_the_fov_crops(prepared_kitti):
    for frame in TRAIN + VAL:
        full = load_points(prepared_kitti / "training" / "velodyne" / f"{frame}.bin")
        reduced = load_points(prepared_kitti / "training" / "velodyne_reduced" / f"{frame}.bin")
        calib = read_calib_file(prepared_kitti / "training" / "calib" / f"{frame}.txt")
        np.testing.assert_array_equal(
            reduced, full[camera_fov_mask(full, calib.lidar2cam, calib.cam2img, DEMO_IMAGE_SHAPES[frame])]
        )


def test_every_labelled_object_has_lidar_points_and_round_trips(prepared_kitti):
    from ada3d.structures import lidar_to_camera_boxes

    for info in _load(prepared_kitti / "kitti_infos_trainval.pkl")["data_list"]:
        boxes, labels = lidar_boxes_of(info)
        labelled = labels >= 0
        reduced = load_points(prepared_kitti / "training" / "velodyne_reduced" / info["lidar_points"]["lidar_path"])
        counts = points_in_boxes(reduced, boxes[labelled]).sum(axis=0)
        assert (counts > 0).all()
        assert counts.tolist() == [inst["num_lidar_pts"] for inst, keep in zip(info["instances"], labelled) if keep]
        lidar2cam = np.array(info["images"]["CAM2"]["lidar2cam"])
        back = lidar_to_camera_boxes(boxes[labelled].astype(np.float64), lidar2cam)
        original = np.array([inst["bbox_3d"] for inst, keep in zip(info["instances"], labelled) if keep])
        np.testing.assert_allclose(back[:, :6], original[:, :6], atol=1e-5)
        np.testing.assert_allclose(np.cos(back[:, 6] - original[:, 6]), 1.0, atol=1e-10)


def test_gt_database_holds_each_training_object_with_its_points(prepared_kitti):
    db_infos = _load(prepared_kitti / "kitti_dbinfos_train.pkl")
    # 000076: 8 pedestrians, 1 cyclist; 000001: truck, car, cyclist (DontCare excluded); val frames excluded
    assert {name: len(entries) for name, entries in db_infos.items()} == dict(Pedestrian=8, Cyclist=2, Truck=1, Car=1)
    entries = [entry for group in db_infos.values() for entry in group]
    assert sorted(entry["group_id"] for entry in entries) == list(range(12))
    cyclist = next(entry for entry in db_infos["Cyclist"] if entry["image_idx"] == 76)
    assert cyclist["path"] == "kitti_gt_database/76_Cyclist_3.bin" and cyclist["gt_idx"] == 3
    assert cyclist["difficulty"] == 0 and cyclist["score"] == 0.0
    for entry in entries:
        points = load_points(prepared_kitti / entry["path"])
        assert len(points) == entry["num_points_in_gt"] > 0
        box = entry["box3d_lidar"]
        assert box.dtype == np.float32 and box.shape == (7,)
        points[:, :3] += box[:3]  # stored relative to the bottom centre
        assert points_in_boxes(points, box[None]).all()


def test_cli_kitti_without_images_needs_an_explicit_image_shape(tmp_path, capsys):
    root = copy_demo_kitti(tmp_path / "kitti", ["000008"], [], images=False)
    with pytest.raises(FileNotFoundError, match=r"image_2/000008\.png does not exist.*--image-shape"):
        create_data_cli.main(["kitti", "--root", str(root)])
    written = create_data_cli.main(["kitti", "--root", str(root), "--image-shape", "375", "1242"])
    assert "infos_train: " in capsys.readouterr().out
    camera = _load(written["infos_train"])["data_list"][0]["images"]["CAM2"]
    assert (camera["height"], camera["width"]) == (375, 1242)
    assert _load(written["infos_val"])["data_list"] == []


def test_cli_synthkitti_simulates_then_prepares(tmp_path, monkeypatch):
    calls = []

    def generate_kitti_dataset(out_dir, num_frames, seed, val_fraction=0.25, workers=1):
        """Stand-in for the simulator: writes a KITTI-format copy of the demo frames."""
        calls.append((str(out_dir), num_frames, seed, val_fraction, workers))
        copy_demo_kitti(Path(out_dir), ["000076"], ["000008"])

    monkeypatch.setitem(sys.modules, "ada3d.datasets.synthetic", types.SimpleNamespace(
        generate_kitti_dataset=generate_kitti_dataset))
    out = tmp_path / "synthkitti"
    written = create_data_cli.main(["synthkitti", "--out", str(out), "--frames", "2", "--seed", "7"])
    assert calls == [(str(out), 2, 7, 0.25, 1)]
    assert _load(written["infos_train"])["metainfo"]["dataset"] == "synthkitti"
    assert (out / "kitti_dbinfos_train.pkl").is_file()
    assert (out / "training" / "velodyne_reduced" / "000008.bin").is_file()


def _truncate_scan(root: Path) -> None:
    path = root / "training" / "velodyne" / "000008.bin"
    path.write_bytes(path.read_bytes()[:-6])


def _empty_scan(root: Path) -> None:
    (root / "training" / "velodyne" / "000008.bin").write_bytes(b"")


def _remove(folder: str, name: str):
    return lambda root: (root / "training" / folder / name).unlink()


def _break_label_line(root: Path) -> None:
    path = root / "training" / "label_2" / "000008.txt"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(" 1.64 ", " 1,64 ")
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("corrupt", "error", "message"),
    [
        (_truncate_scan, ValueError, r"velodyne/000008\.bin: size \d+ bytes is not a multiple of 16"),
        (_empty_scan, ValueError, r"velodyne/000008\.bin: the scan has no points"),
        (_remove("label_2", "000008.txt"), FileNotFoundError, r"label file not found: .*label_2/000008\.txt"),
        (_remove("calib", "000008.txt"), FileNotFoundError, r"calib file not found: .*calib/000008\.txt"),
        (_break_label_line, ValueError, r"label_2/000008\.txt:3: non-numeric label field"),
    ],
)
def test_bad_input_fails_naming_the_file(tmp_path, corrupt, error, message):
    root = copy_demo_kitti(tmp_path / "kitti", ["000008"], [])
    corrupt(root)
    with pytest.raises(error, match=message):
        prepare_kitti(root)


def test_non_finite_points_are_dropped_and_counted(tmp_path, logged):
    root = copy_demo_kitti(tmp_path / "kitti", ["000008"], [])
    scan = root / "training" / "velodyne" / "000008.bin"
    points = load_points(scan)
    points[[10, 20, 30], 1] = [np.nan, np.inf, -np.inf]
    points.tofile(scan)
    prepare_kitti(root)
    assert any(message.endswith("000008.bin: dropped 3 of 122555 points with NaN/inf values") for message in logged)
    assert np.isfinite(load_points(root / "training" / "velodyne_reduced" / "000008.bin")).all()


def test_missing_split_file_and_test_split_without_testing_folder(tmp_path, logged):
    root = copy_demo_kitti(tmp_path / "kitti", ["000008"], [])
    (root / "ImageSets" / "test.txt").write_text("000000\n")
    written = prepare_kitti(root)
    assert "infos_test" not in written
    assert any(message.endswith("testing/velodyne does not exist: no test infos written") for message in logged)
    (root / "ImageSets" / "val.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"split file not found: .*ImageSets/val\.txt"):
        prepare_kitti(root)


def test_test_split_has_infos_without_instances(tmp_path):
    root = copy_demo_kitti(tmp_path / "kitti", ["000008"], [])
    shutil.copytree(root / "training", root / "testing", ignore=shutil.ignore_patterns("label_2", "velodyne_reduced"))
    (root / "ImageSets" / "test.txt").write_text("000008\n")
    test_infos = _load(prepare_kitti(root)["infos_test"])["data_list"]
    assert [info["sample_idx"] for info in test_infos] == [8] and test_infos[0]["instances"] == []
    assert (root / "testing" / "velodyne_reduced" / "000008.bin").is_file()
