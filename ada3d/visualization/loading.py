"""Frames for the viewer from files: raw point files (KITTI / nuScenes layout) and KITTI label + calib files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.structures import camera_to_lidar_boxes
from ada3d.visualization.frame_view import FrameView

# float32 values per point: KITTI (x, y, z, intensity) and nuScenes (x, y, z, intensity, ring)
KITTI_POINT_DIM = 4
NUSCENES_POINT_DIM = 5
# KITTI object classes in the order of the devkit; DontCare regions are not objects and are skipped
KITTI_CLASSES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc")
# ranges [x0, y0, z0, x1, y1, z1] (metres) of the common configs: KITTI's camera field of view, nuScenes' 360 deg
KITTI_POINT_CLOUD_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
NUSCENES_POINT_CLOUD_RANGE = (-51.2, -51.2, -5.0, 51.2, 51.2, 3.0)


def default_point_cloud_range(view: FrameView) -> tuple[float, ...]:
    """The range to frame ``view`` in: its first stage grid's, else KITTI's for 4-column points and
    nuScenes' for 5 or more columns."""
    for stage in view.stages:
        for grid in (stage.grid, stage.importance_grid):
            if grid is not None:
                return grid.point_cloud_range
    return NUSCENES_POINT_CLOUD_RANGE if view.points.shape[1] >= NUSCENES_POINT_DIM else KITTI_POINT_CLOUD_RANGE


class FrameSource(NamedTuple):
    """A frame to show, loaded only when needed (the viewer steps through many)."""

    name: str
    load: Callable[[], FrameView]


def infer_point_dim(path: str | Path) -> int:
    """Float32 values per point of a raw point file: 4 (KITTI x, y, z, i) or 5 (nuScenes x, y, z, i, ring).

    ``*.pcd.bin`` files are nuScenes'. Otherwise the file size decides; when it is a multiple of both
    16 and 20 bytes, the file is read as 5 columns and taken for nuScenes when the fifth column holds
    ring numbers (whole numbers in [0, 128)), else for KITTI.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the size fits neither layout (pass ``--load-dim`` for other layouts).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point file {path} does not exist")
    if path.name.endswith(".pcd.bin"):
        return NUSCENES_POINT_DIM
    size = path.stat().st_size
    fits = [dim for dim in (KITTI_POINT_DIM, NUSCENES_POINT_DIM) if size % (4 * dim) == 0]
    if not fits:
        raise ValueError(
            f"{path}: {size} bytes is neither a whole number of KITTI points (4 float32 = 16 bytes) nor of "
            f"nuScenes points (5 float32 = 20 bytes); give the layout with --load-dim, or the file is truncated"
        )
    if len(fits) == 1:
        return fits[0]
    ring = np.fromfile(path, dtype=np.float32).reshape(-1, NUSCENES_POINT_DIM)[:, 4]
    is_ring = np.isfinite(ring).all() and (ring == np.round(ring)).all() and ((ring >= 0) & (ring < 128)).all()
    return NUSCENES_POINT_DIM if is_ring else KITTI_POINT_DIM


def kitti_lidar_boxes(label_path: str | Path, calib_path: str | Path) -> tuple[np.ndarray, list[str]]:
    """Ground-truth LiDAR boxes of a KITTI frame.

    Returns:
        ``(boxes [M, 7] float32 LiDAR (x, y, z, l, w, h, yaw), names [M])``, DontCare regions left out.
    """
    objects = [obj for obj in read_label_file(label_path) if obj.name != "DontCare"]
    calib = read_calib_file(calib_path)
    camera_boxes = np.array([obj.camera_box for obj in objects], dtype=np.float64).reshape(-1, 7)
    boxes = camera_to_lidar_boxes(camera_boxes, calib.lidar2cam).astype(np.float32)
    return boxes, [obj.name for obj in objects]


def kitti_companion_files(point_path: str | Path) -> tuple[Path | None, Path | None]:
    """``(label, calib)`` of a scan in a KITTI tree (``<split>/velodyne[_reduced]/<id>.bin`` ->
    ``<split>/label_2/<id>.txt``, ``<split>/calib/<id>.txt``), each None where it does not exist."""
    point_path = Path(point_path)
    if point_path.parent.name not in ("velodyne", "velodyne_reduced"):
        return None, None
    split = point_path.parent.parent
    label, calib = split / "label_2" / f"{point_path.stem}.txt", split / "calib" / f"{point_path.stem}.txt"
    return (label if label.is_file() else None), (calib if calib.is_file() else None)


def load_frame_from_files(
    point_path: str | Path,
    load_dim: int | None = None,
    label_path: str | Path | None = None,
    calib_path: str | Path | None = None,
    name: str | None = None,
) -> FrameView:
    """A :class:`FrameView` of a raw point file, with KITTI ground truth when a label file is given.

    Args:
        point_path: ``.bin`` / ``.pcd.bin`` float32 points.
        load_dim: float32 values per point (default: :func:`infer_point_dim`).
        label_path / calib_path: a KITTI label file and the calib file that maps it to LiDAR (both or neither).
        name: defaults to the file's stem.
    """
    if (label_path is None) != (calib_path is None):
        raise ValueError(f"{point_path}: KITTI labels are camera boxes; give the label file together with its calib "
                         f"file (got label={label_path}, calib={calib_path})")
    load_dim = infer_point_dim(point_path) if load_dim is None else load_dim
    points = load_points(point_path, num_features=load_dim)
    fields = {}
    if label_path is not None:
        boxes, names = kitti_lidar_boxes(label_path, calib_path)
        classes = KITTI_CLASSES + tuple(sorted(set(names) - set(KITTI_CLASSES)))
        fields = {"gt_boxes": boxes, "gt_labels": [classes.index(n) for n in names], "class_names": classes}
    return FrameView(points=points, name=name or Path(point_path).name.split(".")[0], **fields)


def kitti_frame_ids(root: str | Path, split: str = "training") -> list[str]:
    """Sorted sample ids of the scans under ``root/split/velodyne``."""
    folder = Path(root) / split / "velodyne"
    if not folder.is_dir():
        raise FileNotFoundError(f"KITTI scans folder {folder} does not exist (expected <root>/<split>/velodyne/*.bin)")
    return sorted(path.stem for path in folder.glob("*.bin"))


def load_kitti_frame(root: str | Path, index: int | str, split: str = "training") -> FrameView:
    """Frame ``index`` (``8`` or ``"000008"``) of a KITTI tree, with its ground truth where labels exist."""
    sample_id = f"{int(index):06d}" if str(index).isdigit() else str(index)
    point_path = Path(root) / split / "velodyne" / f"{sample_id}.bin"
    if not point_path.is_file():
        raise FileNotFoundError(f"KITTI frame {sample_id}: {point_path} does not exist")
    label, calib = kitti_companion_files(point_path)
    if label is None:
        calib = None
    return load_frame_from_files(point_path, KITTI_POINT_DIM, label, calib, name=sample_id)
