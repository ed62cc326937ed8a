"""Reading point-cloud files with errors that name the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_points(path: str | Path, num_features: int = 4, use_features: int | None = None) -> np.ndarray:
    """Read a float32 point file (KITTI ``.bin``: x, y, z, intensity; nuScenes ``.pcd.bin``: 5 columns).

    Args:
        path: the file.
        num_features: float32 values per point stored in the file.
        use_features: keep only the first this-many columns (default: all).

    Returns:
        ``[N, use_features]`` float32 array, coordinates in metres.

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
