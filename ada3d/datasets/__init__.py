"""Datasets, their file formats and data preparation (see kitti_converter.py)."""

from ada3d.datasets import transforms  # noqa: F401  (registers the transforms)
from ada3d.datasets.io import load_points
from ada3d.datasets.kitti import KittiDataset
from ada3d.datasets.kitti_converter import prepare_kitti

__all__ = ["KittiDataset", "load_points", "prepare_kitti"]
