"""Writing a synthetic dataset in KITTI's object-detection layout.

::

    out_dir/training/velodyne/000000.bin   float32 (x, y, z, intensity), LiDAR frame
    out_dir/training/label_2/000000.txt    KITTI labels (camera frame)
    out_dir/training/calib/000000.txt      P0-P3, R0_rect, Tr_velo_to_cam, Tr_imu_to_velo
    out_dir/training/image_2/000000.png    1242 x 375 view of the scan from the virtual camera
    out_dir/ImageSets/{train,val,trainval}.txt

Frame ``i`` is drawn from a generator seeded with ``(seed, i)`` alone, so the result does not depend on
the number of workers or on which frames are generated together.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ada3d.datasets.kitti_files import KittiCalib, KittiObject, write_calib_file, write_label_file
from ada3d.datasets.synthetic.camera import IMAGE_SHAPE, perturbed_calib
from ada3d.datasets.synthetic.image import render_camera_image, write_png
from ada3d.datasets.synthetic.labels import make_labels
from ada3d.datasets.synthetic.lidar import Scan, simulate_scan
from ada3d.datasets.synthetic.scene import Scene, generate_scene
from ada3d.datasets.synthetic.sensor import SensorConfig

SUBFOLDERS = ("velodyne", "label_2", "calib", "image_2")


@dataclass
class SyntheticFrame:
    """One simulated frame: the scan's points, KITTI labels and calibration, the camera image, and the
    scene and scan they came from."""

    points: np.ndarray
    labels: list[KittiObject]
    calib: KittiCalib
    image: np.ndarray | None
    scene: Scene
    scan: Scan


def simulate_frame(seed: int, index: int, sensor: SensorConfig | None = None, render: bool = True) -> SyntheticFrame:
    """Frame ``index`` of the dataset drawn with ``seed`` (the image only when ``render``)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and frame index must be non-negative, got seed={seed}, index={index}")
    sensor = SensorConfig() if sensor is None else sensor
    rng = np.random.default_rng([seed, index])
    scene = generate_scene(rng, sensor.height)
    scan = simulate_scan(scene, sensor, rng)
    calib = perturbed_calib(rng)
    on_object = scan.object_index[scan.object_index >= 0]
    points_per_object = np.bincount(on_object, minlength=len(scene.objects))
    labels = make_labels(scene.objects, points_per_object, scan.visible_rays, scan.rays_on_object, calib, IMAGE_SHAPE)
    image = render_camera_image(scan, scene.primitives, calib, IMAGE_SHAPE) if render else None
    return SyntheticFrame(scan.points, labels, calib, image, scene, scan)


def write_frame(training_dir: Path, index: int, frame: SyntheticFrame) -> None:
    """Write one frame's four files under ``training_dir``."""
    name = f"{index:06d}"
    frame.points.astype(np.float32).tofile(training_dir / "velodyne" / f"{name}.bin")
    write_label_file(training_dir / "label_2" / f"{name}.txt", frame.labels)
    write_calib_file(training_dir / "calib" / f"{name}.txt", frame.calib)
    if frame.image is not None:
        write_png(training_dir / "image_2" / f"{name}.png", frame.image)


def _generate_and_write(training_dir: Path, seed: int, sensor: SensorConfig, index: int) -> int:
    write_frame(training_dir, index, simulate_frame(seed, index, sensor))
    return index


def split_frames(num_frames: int, seed: int, val_fraction: float) -> tuple[list[int], list[int]]:
    """``(train, val)`` frame indices, sorted; a seeded shuffle puts ``val_fraction`` of them in val
    (at least one frame in each part when there are two frames or more and the fraction is positive)."""
    num_val = int(round(val_fraction * num_frames))
    if val_fraction > 0 and num_frames >= 2:
        num_val = min(max(num_val, 1), num_frames - 1)
    order = np.random.default_rng(seed).permutation(num_frames)
    return sorted(order[num_val:].tolist()), sorted(order[:num_val].tolist())


def generate_kitti_dataset(out_dir, num_frames: int, seed: int, val_fraction: float = 0.25, workers: int = 1, *,
                           sensor: SensorConfig | None = None) -> None:
    """Simulate ``num_frames`` frames and write them as a KITTI object-detection tree under ``out_dir``.

    Args:
        out_dir: root of the tree (created; existing frames of the same ids are overwritten).
        num_frames: number of frames (>= 1).
        seed: dataset seed (>= 0); frame ``i`` depends on ``(seed, i)`` only.
        val_fraction: share of frames listed in ``ImageSets/val.txt`` (the rest in ``train.txt``).
        workers: processes that simulate frames in parallel (results are identical for any count).
        sensor: the scanner (default: the KITTI HDL-64E, see :class:`SensorConfig`).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    sensor = SensorConfig() if sensor is None else sensor
    root = Path(out_dir)
    training = root / "training"
    for sub in SUBFOLDERS:
        (training / sub).mkdir(parents=True, exist_ok=True)
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)

    job = partial(_generate_and_write, training, seed, sensor)
    progress = tqdm(total=num_frames, desc="synthetic KITTI frames", unit="frame")
    if workers == 1:
        for index in range(num_frames):
            job(index)
            progress.update()
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        with context.Pool(workers) as pool:
            for _ in pool.imap_unordered(job, range(num_frames), chunksize=2):
                progress.update()
    progress.close()

    train, val = split_frames(num_frames, seed, val_fraction)
    for name, ids in (("train", train), ("val", val), ("trainval", sorted(train + val))):
        (root / "ImageSets" / f"{name}.txt").write_text("".join(f"{i:06d}\n" for i in ids))
