"""One KITTI frame as an info dict in mmdet3d's v2 layout, KITTI's difficulty levels, and the camera-FOV crop.

An info (one entry of ``data_list`` in ``kitti_infos_*.pkl``)::

    sample_idx     int frame number (000042 -> 42)
    images         CAM0..CAM3: cam2img (P0..P3, 4x4), lidar2img (cam2img @ lidar2cam);
                   CAM2 also img_path ('000042.png'), height, width (pixels), lidar2cam (R0_rect @ Tr_velo_to_cam);
                   R0_rect (4x4)
    lidar_points   num_pts_feats (4), lidar_path ('000042.bin'), Tr_velo_to_cam, Tr_imu_to_velo (4x4)
    instances      one dict per label line, DontCare included (see :func:`frame_instances`); [] without labels

Matrices are nested lists of floats, as mmdet3d writes them; paths are file names, joined with the dataset's
``data_prefix`` when loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ada3d.datasets.io import drop_non_finite, load_points, read_png_size
from ada3d.datasets.kitti_files import KittiCalib, KittiObject, pad_to_4x4, read_calib_file, read_label_file
from ada3d.structures import camera_to_lidar_boxes, points_in_boxes, project_to_image, transform_points

# The classes of KITTI's label files, in mmdet3d's order: info labels index this tuple; DontCare (and any
# unknown name) gets label -1.
KITTI_CLASSES = ("Pedestrian", "Cyclist", "Car", "Van", "Truck", "Person_sitting", "Tram", "Misc")
INFO_VERSION = "1.1"

# KITTI object benchmark limits for easy / moderate / hard ground truth (devkit, evaluate_object.cpp).
MIN_HEIGHT = (40.0, 25.0, 25.0)  # 2D box height, pixels
MAX_OCCLUSION = (0, 1, 2)  # 0 fully visible, 1 partly occluded, 2 largely occluded, 3 unknown
MAX_TRUNCATION = (0.15, 0.3, 0.5)  # fraction of the object outside the image

# The camera frustum of the FOV crop ends at these depths (metres), as in SECOND / mmdet3d's velodyne_reduced.
FOV_DEPTH_RANGE = (0.001, 100.0)


def kitti_difficulty(box_height: np.ndarray, occluded: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """KITTI difficulty of objects: 0 easy, 1 moderate, 2 hard, -1 when no level's limits are met.

    An object meets level ``d`` when its 2D box is at least ``MIN_HEIGHT[d]`` pixels tall, ``occluded <=
    MAX_OCCLUSION[d]`` and ``truncated <= MAX_TRUNCATION[d]``; its difficulty is the easiest level it meets (the
    levels are nested). This is the devkit's rule (it ignores boxes with ``height < MIN_HEIGHT``); mmdet3d's
    converter excludes ``height <= MIN_HEIGHT``, which differs only for a box exactly 40 or 25 pixels tall.

    Args:
        box_height: ``[N]`` 2D box heights ``y2 - y1`` in pixels.
        occluded: ``[N]`` KITTI occlusion states.
        truncated: ``[N]`` truncation fractions.

    Returns:
        ``[N]`` int32.
    """
    box_height, occluded, truncated = (np.asarray(a, dtype=np.float64) for a in (box_height, occluded, truncated))
    difficulty = np.full(box_height.shape, -1, dtype=np.int32)
    for level in reversed(range(3)):
        meets = (box_height >= MIN_HEIGHT[level]) & (occluded <= MAX_OCCLUSION[level])
        difficulty[meets & (truncated <= MAX_TRUNCATION[level])] = level
    return difficulty


def camera_fov_mask(
    points: np.ndarray, lidar2cam: np.ndarray, cam2img: np.ndarray, image_shape: tuple[int, int]
) -> np.ndarray:
    """Which LiDAR points project into the image, with a depth in :data:`FOV_DEPTH_RANGE` (KITTI's velodyne_reduced).

    Args:
        points: ``[N, >=3]`` LiDAR points (metres).
        lidar2cam, cam2img: 4x4 (see ``ada3d.structures.box_conversions``).
        image_shape: ``(height, width)`` in pixels.

    Returns:
        bool ``[N]``; the image includes its borders ``0 <= u <= width``, ``0 <= v <= height``.
    """
    pixels, depth = project_to_image(transform_points(points[:, :3].astype(np.float64), lidar2cam), cam2img)
    height, width = image_shape
    return (
        (depth > FOV_DEPTH_RANGE[0]) & (depth < FOV_DEPTH_RANGE[1])
        & (pixels[:, 0] >= 0) & (pixels[:, 0] <= width) & (pixels[:, 1] >= 0) & (pixels[:, 1] <= height)
    )


def frame_instances(objects: list[KittiObject], calib: KittiCalib, points: np.ndarray) -> list[dict]:
    """The ``instances`` of a frame: one dict per label line, in file order.

    Keys (mmdet3d v2): ``bbox`` (x1, y1, x2, y2 pixels), ``bbox_label`` / ``bbox_label_3d`` (index into
    :data:`KITTI_CLASSES`, -1 for DontCare and unknown names), ``bbox_3d`` (camera box x, y, z, l, h, w, ry: the
    label's bottom centre, dimensions and rotation), ``depth`` / ``center_2d`` (the 3D box centre projected with
    P2), ``num_lidar_pts`` (points of ``points`` in the box; -1 for DontCare), ``difficulty``
    (:func:`kitti_difficulty`), ``truncated``, ``occluded``, ``alpha``, ``score`` (the label's 16th column, else 0),
    ``index`` (running index over the non-DontCare objects; -1 for DontCare), ``group_id`` (position in the file),
    and ``bbox_3d_isvalid`` (False for DontCare, whose 3D box is KITTI's placeholder).

    Args:
        objects: the frame's label lines.
        calib: its calibration.
        points: ``[N, >=3]`` LiDAR points counted into ``num_lidar_pts`` (the camera-FOV crop, as mmdet3d).
    """
    if not objects:
        return []
    boxes_cam = np.stack([obj.camera_box for obj in objects])
    cared = np.array([obj.name != "DontCare" for obj in objects])
    num_points = np.full(len(objects), -1, dtype=np.int64)
    if cared.any():
        boxes_lidar = camera_to_lidar_boxes(boxes_cam[cared], calib.lidar2cam)
        num_points[cared] = points_in_boxes(points, boxes_lidar).sum(axis=0)
    bboxes = np.stack([obj.bbox for obj in objects])
    difficulty = kitti_difficulty(
        bboxes[:, 3] - bboxes[:, 1], [obj.occluded for obj in objects], [obj.truncated for obj in objects]
    )
    centres = boxes_cam[:, :3].copy()
    centres[:, 1] -= boxes_cam[:, 4] / 2  # the gravity centre, half the height above the bottom (camera y is down)
    homogeneous = centres @ calib.cam2img[:3, :3].T + calib.cam2img[:3, 3]
    indices = np.cumsum(cared) - 1

    instances = []
    for i, obj in enumerate(objects):
        label = KITTI_CLASSES.index(obj.name) if obj.name in KITTI_CLASSES else -1
        instances.append(
            dict(
                bbox=bboxes[i].tolist(),
                bbox_label=label,
                bbox_3d=boxes_cam[i].tolist(),
                bbox_3d_isvalid=bool(cared[i]),
                bbox_label_3d=label,
                depth=float(homogeneous[i, 2]),
                center_2d=(homogeneous[i, :2] / homogeneous[i, 2]).tolist(),
                num_lidar_pts=int(num_points[i]),
                difficulty=int(difficulty[i]),
                truncated=obj.truncated,
                occluded=obj.occluded,
                alpha=obj.alpha,
                score=0.0 if obj.score is None else obj.score,
                index=int(indices[i]) if cared[i] else -1,
                group_id=i,
            )
        )
    return instances


def frame_images(calib: KittiCalib, frame_id: str, image_shape: tuple[int, int]) -> dict:
    """The ``images`` entry of an info (see the module docstring)."""
    lidar2cam = calib.lidar2cam
    images = {}
    for camera in range(4):
        cam2img = pad_to_4x4(getattr(calib, f"P{camera}"))
        images[f"CAM{camera}"] = dict(cam2img=cam2img.tolist(), lidar2img=(cam2img @ lidar2cam).tolist())
    images["CAM2"].update(img_path=f"{frame_id}.png", height=image_shape[0], width=image_shape[1],
                          lidar2cam=lidar2cam.tolist())
    images["R0_rect"] = pad_to_4x4(calib.R0_rect).tolist()
    return images


class FrameInfo(NamedTuple):
    """One frame read by :func:`build_frame_info`."""

    info: dict  # the info dict (module docstring)
    fov_points: np.ndarray  # [N, C] float32 scan points inside the camera FOV: velodyne_reduced/<frame>.bin
    ignored_names: set[str]  # label names outside KITTI_CLASSES (DontCare, ...): label -1 in the info


def build_frame_info(
    split_dir: str | Path,
    frame_id: str,
    with_labels: bool,
    image_shape: tuple[int, int] | None = None,
    num_features: int = 4,
) -> FrameInfo:
    """Read one frame of ``split_dir`` (``<root>/training`` or ``<root>/testing``) into an info.

    Args:
        split_dir: the folder with ``velodyne``, ``calib``, ``image_2`` (and ``label_2`` when ``with_labels``).
        frame_id: e.g. ``'000042'``.
        with_labels: read ``label_2`` into ``instances`` (False for the test split).
        image_shape: ``(height, width)`` for every frame when the folder has no ``image_2``; by default each
            image's size is read from its PNG header, and a missing image is an error.
        num_features: float32 values per point in the velodyne files.

    Returns:
        :class:`FrameInfo`; its ``fov_points`` are the scan's points inside the camera FOV (:func:`camera_fov_mask`).

    Raises:
        FileNotFoundError / ValueError naming the file: missing or malformed velodyne, calib, label or image files,
        an empty scan. Points with NaN/inf values are dropped (and counted in a warning).
    """
    split_dir = Path(split_dir)
    lidar_file = split_dir / "velodyne" / f"{frame_id}.bin"
    points = load_points(lidar_file, num_features)
    if len(points) == 0:
        raise ValueError(f"{lidar_file}: the scan has no points")
    points = drop_non_finite(points, lidar_file)
    calib = read_calib_file(split_dir / "calib" / f"{frame_id}.txt")
    if image_shape is None:
        image_file = split_dir / "image_2" / f"{frame_id}.png"
        if not image_file.is_file():
            raise FileNotFoundError(
                f"{image_file} does not exist: the infos record each image's size, which the FOV crop and the "
                "KITTI metric need; download KITTI's left colour images (image_2) or pass one image_shape for "
                "every frame (tools/create_data.py --image-shape HEIGHT WIDTH)"
            )
        image_shape = read_png_size(image_file)
    fov_points = points[camera_fov_mask(points, calib.lidar2cam, calib.cam2img, image_shape)]
    objects = read_label_file(split_dir / "label_2" / f"{frame_id}.txt") if with_labels else []
    info = dict(
        sample_idx=int(frame_id),
        images=frame_images(calib, frame_id, image_shape),
        lidar_points=dict(
            num_pts_feats=num_features,
            lidar_path=f"{frame_id}.bin",
            Tr_velo_to_cam=pad_to_4x4(calib.Tr_velo_to_cam).tolist(),
            Tr_imu_to_velo=pad_to_4x4(calib.Tr_imu_to_velo).tolist(),
        ),
        instances=frame_instances(objects, calib, fov_points),
    )
    return FrameInfo(info, fov_points, {obj.name for obj in objects if obj.name not in KITTI_CLASSES})


def lidar_boxes_of(info: dict) -> tuple[np.ndarray, np.ndarray]:
    """LiDAR boxes ``[M, 7]`` (float32, bottom centre) of an info's instances and their info labels ``[M]``."""
    instances = info["instances"]
    labels = np.array([inst["bbox_label_3d"] for inst in instances], dtype=np.int64)
    boxes_cam = np.array([inst["bbox_3d"] for inst in instances], dtype=np.float64).reshape(-1, 7)
    lidar2cam = np.array(info["images"]["CAM2"]["lidar2cam"])
    return camera_to_lidar_boxes(boxes_cam, lidar2cam).astype(np.float32), labels

