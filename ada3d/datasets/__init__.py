"""Datasets and their file formats."""

from ada3d.datasets.io import load_points

__all__ = ["load_points"]
