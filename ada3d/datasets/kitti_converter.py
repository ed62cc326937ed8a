"""Prepare a KITTI-format dataset for training: info files, camera-FOV point clouds and the GT database.

:func:`prepare_kitti` is what ``tools/create_data.py kitti`` (real KITTI) and ``synthkitti`` (our simulated set)
run on a root laid out as KITTI's::

    <root>/ImageSets/{train,val}.txt (test.txt optional)
    <root>/training/{velodyne,calib,label_2,image_2}/
    <root>/testing/{velodyne,calib,image_2}/          (only for test.txt)

and writes, next to them::

    <root>/training/velodyne_reduced/, <root>/testing/velodyne_reduced/   scans cropped to the camera FOV
    <root>/<prefix>_infos_{train,val,trainval,test}.pkl                   dict(metainfo=..., data_list=[...])
    <root>/<prefix>_gt_database/, <root>/<prefix>_dbinfos_train.pkl      (see gt_database.py)

``metainfo``: ``categories`` (mmdet3d's: class name -> info label; DontCare and unknown names -> -1),
``classes`` (the eight labelled KITTI classes in label order), ``dataset``, ``info_version`` ('1.1'). trainval is
train + val (in that order), as in mmdet3d. ``data_list`` entries are described in kitti_infos.py.
"""

from __future__ import annotations

import logging
import pickle
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from mmengine.logging import print_log
from tqdm import tqdm

from ada3d.datasets.gt_database import create_gt_database
from ada3d.datasets.kitti_files import read_image_set
from ada3d.datasets.kitti_infos import INFO_VERSION, KITTI_CLASSES, build_frame_info


def prepare_kitti(
    root: str | Path,
    info_prefix: str = "kitti",
    dataset_name: str = "kitti",
    workers: int = 1,
    image_shape: tuple[int, int] | None = None,
) -> dict[str, Path]:
    """Write infos, velodyne_reduced and the GT database of the KITTI-format dataset at ``root``.

    Args:
        root: the dataset root (see the module docstring).
        info_prefix: prefix of the written files (``kitti`` -> ``kitti_infos_train.pkl`` ...).
        dataset_name: ``metainfo['dataset']`` of the info files.
        workers: processes reading frames (1: in this process).
        image_shape: ``(height, width)`` to record for every frame of a copy without ``image_2``; by default each
            frame's image size is read from its PNG header and a missing image is an error.

    Returns:
        The written files by name: ``infos_train``, ``infos_val``, ``infos_trainval``, ``infos_test`` (only with
        ``ImageSets/test.txt`` and a ``testing`` folder), ``dbinfos_train``.
    """
    root = Path(root)
    splits = {name: read_image_set(root / "ImageSets" / f"{name}.txt") for name in ("train", "val")}
    build = partial(_frame_infos, workers=workers, image_shape=image_shape)
    labelled, ignored_names = build(root / "training", sorted(set(splits["train"]) | set(splits["val"])), True)
    split_infos = {name: [labelled[frame] for frame in ids] for name, ids in splits.items()}
    split_infos["trainval"] = split_infos["train"] + split_infos["val"]

    test_file = root / "ImageSets" / "test.txt"
    if test_file.is_file() and (root / "testing" / "velodyne").is_dir():
        test_ids = read_image_set(test_file)
        test_infos, _ = build(root / "testing", test_ids, False)
        split_infos["test"] = [test_infos[frame] for frame in test_ids]
    elif test_file.is_file():
        print_log(f"{root / 'testing' / 'velodyne'} does not exist: no test infos written", "current", logging.WARNING)

    categories = {name: label for label, name in enumerate(KITTI_CLASSES)} | dict.fromkeys(sorted(ignored_names), -1)
    metainfo = dict(categories=categories, classes=KITTI_CLASSES, dataset=dataset_name, info_version=INFO_VERSION)
    written = {}
    for name, infos in split_infos.items():
        path = root / f"{info_prefix}_infos_{name}.pkl"
        with open(path, "wb") as file:
            pickle.dump(dict(metainfo=metainfo, data_list=infos), file)
        written[f"infos_{name}"] = path
    create_gt_database(root, split_infos["train"], info_prefix)
    written["dbinfos_train"] = root / f"{info_prefix}_dbinfos_train.pkl"
    return written


def _frame_infos(
    split_dir: Path, frame_ids: list[str], with_labels: bool, workers: int, image_shape: tuple[int, int] | None
) -> tuple[dict[str, dict], set[str]]:
    """Infos of ``frame_ids`` by id and the label names outside KITTI_CLASSES; writes each frame's camera-FOV scan
    to ``split_dir/velodyne_reduced``."""
    if not (split_dir / "velodyne").is_dir():
        raise FileNotFoundError(f"{split_dir / 'velodyne'} does not exist: the split files list frames of {split_dir}")
    (split_dir / "velodyne_reduced").mkdir(exist_ok=True)
    job = partial(_frame_info_job, split_dir, with_labels=with_labels, image_shape=image_shape)
    progress = partial(tqdm, total=len(frame_ids), desc=f"infos of {split_dir}", unit="frame")
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            frames = list(progress(pool.map(job, frame_ids, chunksize=16)))
    else:
        frames = [job(frame) for frame in progress(frame_ids)]
    ignored_names = set().union(*(names for _, names in frames))
    return {frame: info for frame, (info, _) in zip(frame_ids, frames)}, ignored_names


def _frame_info_job(
    split_dir: Path, frame_id: str, with_labels: bool, image_shape: tuple[int, int] | None
) -> tuple[dict, set[str]]:
    frame = build_frame_info(split_dir, frame_id, with_labels, image_shape)
    frame.fov_points.tofile(split_dir / "velodyne_reduced" / frame.info["lidar_points"]["lidar_path"])
    return frame.info, frame.ignored_names

