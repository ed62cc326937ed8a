"""Synthetic KITTI-like LiDAR data: a ray-cast Velodyne HDL-64E in random street scenes.

Entry point: :func:`generate_kitti_dataset` writes a KITTI object-detection tree (velodyne, label_2,
calib, image_2, ImageSets). :func:`simulate_frame` returns one frame in memory. See
docs/synthetic_lidar.md for the model and how its scans compare with real KITTI scans.
"""

from ada3d.datasets.synthetic.dataset import SyntheticFrame, generate_kitti_dataset, simulate_frame, split_frames
from ada3d.datasets.synthetic.sensor import SensorConfig, hdl64e_elevations_deg

__all__ = ["SensorConfig", "SyntheticFrame", "generate_kitti_dataset", "hdl64e_elevations_deg", "simulate_frame",
           "split_frames"]
