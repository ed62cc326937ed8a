"""Reading point-cloud files and image headers with errors that name the file and the problem."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
from mmengine.logging import print_log

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_points(path: str | Path, num_features: int = 4, use_features: int | None = None) -> np.ndarray:
    """Read a float32 point file (KITTI ``.bin``: x, y, z, intensity; nuScenes ``.pcd.bin``: 5 columns).

    Args:
        path: the file.
        num_features: float32 values per point stored in the file.
        use_features: keep only the first this-many columns (default: all).

    Returns:
        ``[N, use_features]`` float32 array, coordinates in metres (``N`` may be 0 for an empty file).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file size is not a whole number of points.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"point file {path} does not exist")
    size = path.stat().st_size
    point_bytes = 4 * num_features
    if size % point_bytes:
        raise ValueError(
            f"{path}: size {size} bytes is not a multiple of {point_bytes} bytes "
            f"({num_features} float32 values per point); wrong num_features or a truncated file?"
        )
    points = np.fromfile(path, dtype=np.float32).reshape(-1, num_features)
    return points if use_features is None else points[:, :use_features]


def drop_non_finite(points: np.ndarray, source: str | Path) -> np.ndarray:
    """Drop points with a NaN or infinite value in any column; logs a warning naming ``source`` and the count.

    Args:
        points: ``[N, C]``.
        source: the file the points came from (for the warning).

    Returns:
        ``[N', C]``, the finite rows in their original order (``points`` itself when all are finite).
    """
    finite = np.isfinite(points).all(axis=1)
    if finite.all():
        return points
    dropped = int(len(points) - finite.sum())
    print_log(f"{source}: dropped {dropped} of {len(points)} points with NaN/inf values", "current", logging.WARNING)
    return points[finite]


def read_png_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` in pixels of a PNG image, read from its header (the pixels are not decoded).

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file does not start with a PNG signature and an IHDR chunk.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    with path.open("rb") as file:
        header = file.read(24)
    if len(header) < 24 or header[:8] != _PNG_SIGNATURE or header[12:16] != b"IHDR":
        raise ValueError(f"{path}: not a PNG image (no PNG signature and IHDR header in its first 24 bytes)")
    width, height = struct.unpack(">II", header[16:24])
    return height, width
