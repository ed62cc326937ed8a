"""Visualisation of frames and of what Ada3D kept.

Open3D-free parts are importable here; the Open3D scene, cameras, renderer and viewer live in
``ada3d.visualization.{scene,cameras,render,viewer}`` and need the ``viz`` extra (open3d).
"""

from ada3d.visualization.frame_view import (
    DROPPED,
    KEPT,
    NOT_IN_STAGE,
    FrameView,
    GridGeometry,
    PruningStage,
    frame_view_from_data_sample,
)
from ada3d.visualization.loading import load_frame_from_files, load_kitti_frame

__all__ = [
    "DROPPED",
    "KEPT",
    "NOT_IN_STAGE",
    "FrameView",
    "GridGeometry",
    "PruningStage",
    "frame_view_from_data_sample",
    "load_frame_from_files",
    "load_kitti_frame",
]
