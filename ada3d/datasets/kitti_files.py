"""Reading and writing KITTI's per-frame text files: ``label_2/*.txt`` and ``calib/*.txt``.

Label line (KITTI object devkit): ``type truncated occluded alpha x1 y1 x2 y2 h w l x y z ry [score]``;
dimensions in metres, location the bottom centre in the rectified camera frame, angles in radians, the
2D box in pixels. Errors name the file and line, so a bad file in a dataset of thousands is found at once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class KittiObject:
    """One line of a KITTI label file."""

    name: str
    truncated: float
    occluded: int
    alpha: float
    bbox: np.ndarray  # [4] x1, y1, x2, y2 (pixels)
    dimensions: np.ndarray  # [3] l, h, w (metres): note the reorder from the file's h, w, l
    location: np.ndarray  # [3] x, y, z bottom centre, rectified camera frame (metres)
    rotation_y: float
    score: float | None = None

    @property
    def camera_box(self) -> np.ndarray:
        """``[7]`` (x, y, z, l, h, w, ry), the camera box of ``ada3d.structures.box_conversions``."""
        return np.array([*self.location, *self.dimensions, self.rotation_y], dtype=np.float64)


@dataclass
class KittiCalib:
    """The matrices of a KITTI calib file (P0-P3 [3, 4], R0_rect [3, 3], Tr_velo_to_cam [3, 4], ...)."""

    P0: np.ndarray
    P1: np.ndarray
    P2: np.ndarray
    P3: np.ndarray
    R0_rect: np.ndarray
    Tr_velo_to_cam: np.ndarray
    Tr_imu_to_velo: np.ndarray = field(default_factory=lambda: np.eye(4)[:3])

    @property
    def lidar2cam(self) -> np.ndarray:
        """4x4 LiDAR -> rectified camera transform (``R0_rect @ Tr_velo_to_cam``)."""
        return pad_to_4x4(self.R0_rect) @ pad_to_4x4(self.Tr_velo_to_cam)

    @property
    def cam2img(self) -> np.ndarray:
        """4x4-padded projection of the left colour camera (``P2``)."""
        return pad_to_4x4(self.P2)


_CALIB_SHAPES = {"P0": (3, 4), "P1": (3, 4), "P2": (3, 4), "P3": (3, 4), "R0_rect": (3, 3),
                 "Tr_velo_to_cam": (3, 4), "Tr_imu_to_velo": (3, 4)}
# Older KITTI releases spell these differently.
_CALIB_ALIASES = {"R_rect": "R0_rect", "Tr_velo_cam": "Tr_velo_to_cam", "Tr_imu_velo": "Tr_imu_to_velo"}


def pad_to_4x4(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` (3x3 or 3x4) in the top-left of a 4x4 identity, as homogeneous transforms are stored."""
    padded = np.eye(4)
    padded[: matrix.shape[0], : matrix.shape[1]] = matrix
    return padded


def read_calib_file(path: str | Path) -> KittiCalib:
    """Parse a KITTI calib file; raises with the file name when a matrix is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calib file not found: {path}")
    matrices = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, values = line.partition(":")
        key = _CALIB_ALIASES.get(key.strip(), key.strip())
        if not sep or key not in _CALIB_SHAPES:
            continue
        try:
            numbers = np.array(values.split(), dtype=np.float64)
            matrices[key] = numbers.reshape(_CALIB_SHAPES[key])
        except ValueError as error:
            raise ValueError(f"{path}:{number}: {key} needs {np.prod(_CALIB_SHAPES[key])} numbers: {error}") from None
    missing = [key for key in ("P0", "P1", "P2", "P3", "R0_rect", "Tr_velo_to_cam") if key not in matrices]
    if missing:
        raise ValueError(f"{path}: calib file lacks {', '.join(missing)}")
    return KittiCalib(**matrices)


def write_calib_file(path: str | Path, calib: KittiCalib) -> None:
    """Write ``calib`` in KITTI's format (12 significant digits, the key order of the official files)."""
    lines = [f"{key}: " + " ".join(f"{value:.12e}" for value in getattr(calib, key).ravel()) for key in _CALIB_SHAPES]
    Path(path).write_text("\n".join(lines) + "\n\n")


def read_label_file(path: str | Path) -> list[KittiObject]:
    """Parse a KITTI label (or result) file; an empty file is a frame without objects."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI label file not found: {path}")
    objects = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) not in (15, 16):
            raise ValueError(f"{path}:{number}: a label line has 15 fields (16 with a score), got {len(fields)}")
        try:
            values = np.array(fields[1:], dtype=np.float64)
        except ValueError as error:
            raise ValueError(f"{path}:{number}: non-numeric label field: {error}") from None
        height, width, length = values[7:10]
        objects.append(
            KittiObject(
                name=fields[0], truncated=float(values[0]), occluded=int(values[1]), alpha=float(values[2]),
                bbox=values[3:7], dimensions=np.array([length, height, width]), location=values[10:13],
                rotation_y=float(values[13]), score=float(values[14]) if len(values) == 15 else None,
            )
        )
    return objects


def format_label_line(obj: KittiObject) -> str:
    """One KITTI label line for ``obj`` (with the score column when it has one)."""
    length, height, width = obj.dimensions
    numbers = [obj.truncated, obj.occluded, obj.alpha, *obj.bbox, height, width, length, *obj.location, obj.rotation_y]
    text = f"{obj.name} {numbers[0]:.2f} {int(numbers[1])} " + " ".join(f"{value:.2f}" for value in numbers[2:])
    return text if obj.score is None else f"{text} {obj.score:.4f}"


def write_label_file(path: str | Path, objects: list[KittiObject]) -> None:
    """Write ``objects`` as a KITTI label file (an empty file for a frame without objects)."""
    Path(path).write_text("".join(format_label_line(obj) + "\n" for obj in objects))


def read_image_set(path: str | Path) -> list[str]:
    """Frame ids of a KITTI ``ImageSets/*.txt`` split file (one 6-digit id a line), in file order.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming file and line, if a line is not a frame id or an id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI split file not found: {path}")
    ids: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        frame = line.strip()
        if not frame:
            continue
        if not frame.isdigit():
            raise ValueError(f"{path}:{number}: a split file lists frame ids like 000042, got {frame!r}")
        ids.append(frame)
    if repeated := sorted(frame for frame, count in Counter(ids).items() if count > 1):
        raise ValueError(f"{path}: frame ids listed more than once: {', '.join(repeated[:10])}")
    return ids
