"""Scan statistics on a real KITTI frame (committed demo data) and on simulated frames."""

import numpy as np

from ada3d.datasets.io import load_points
from ada3d.datasets.kitti_files import read_calib_file, read_label_file
from ada3d.datasets.synthetic.scan_statistics import (
    DatasetStatistics,
    frame_statistics,
    median_by_distance,
    rings_from_scan_order,
    second_voxel_count,
)
from tests.conftest import KITTI_DEMO_ROOT

TRAINING = KITTI_DEMO_ROOT / "training"


def test_real_scan_statistics():
    points = load_points(TRAINING / "velodyne" / "000008.bin")
    rings = rings_from_scan_order(points)
    assert rings.max() == 63 and np.bincount(rings).max() <= 2160
    assert second_voxel_count(points) == 35986  # as test_real_kitti_frame.py finds with hard_voxelize
    stats = frame_statistics(points, read_label_file(TRAINING / "label_2" / "000008.txt"),
                             read_calib_file(TRAINING / "calib" / "000008.txt"))
    assert stats.num_points == 122555 and stats.points_per_ring.sum() == stats.num_points
    assert stats.object_names == ["Car"] * 6
    # LiDAR points inside the three nearest labelled cars of 000008
    assert sorted(stats.object_points.tolist(), reverse=True)[:3] == [6035, 1900, 1041]
    assert stats.range_histogram.sum() == stats.num_points
    assert np.nanmedian(np.diff(stats.ring_elevation_deg[:32])) < 0  # rings run from the top down


def test_simulated_statistics_with_known_rings(frames):
    stats = DatasetStatistics([frame_statistics(f.points, f.labels, f.calib, rings=f.scan.ring) for f in frames[:3]])
    assert (stats.per_frame("num_points") > 90_000).all()
    assert (0.2 < stats.ground_fraction()).all() and (stats.ground_fraction() < 0.9).all()
    median, p90 = stats.range_quantiles()
    assert 4 < median < 15 and median < p90 < 40
    distances, counts = stats.labelled_objects(("Car",))
    medians = median_by_distance(distances, counts, (0, 15, 80))
    assert medians[0] > medians[1]
