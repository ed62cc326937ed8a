"""Point files: good files load, bad ones fail with the file name and the problem."""

from __future__ import annotations

import numpy as np
import pytest

from ada3d.datasets.io import load_points
from tests.conftest import KITTI_DEMO_ROOT


def test_real_kitti_scan_loads():
    points = load_points(f"{KITTI_DEMO_ROOT}/training/velodyne/000008.bin")
    assert points.shape == (122555, 4) and points.dtype == np.float32
    assert np.abs(points[:, :3]).max() < 130  # metres, HDL-64E range
    assert 0 <= points[:, 3].min() and points[:, 3].max() <= 1


def test_truncated_file_names_file_and_size(tmp_path):
    path = tmp_path / "broken.bin"
    np.zeros(10, dtype=np.float32).tofile(path)  # 40 bytes: not a whole number of 16-byte points
    with pytest.raises(ValueError, match=r"broken\.bin: size 40 bytes is not a multiple of 16"):
        load_points(path)
    assert load_points(path, num_features=5).shape == (2, 5)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.bin"):
        load_points(tmp_path / "missing.bin")
