"""The SECOND SparseEncoder on real KITTI scans: mmdet3d's SECOND KITTI settings.

Range [0, -40, -3, 70.4, 40, 1] m, voxels 0.05 x 0.05 x 0.1 m, hard voxelisation with 5 points per voxel
and up to 40000 voxels (mmdet3d's test-time cap), mean VFE over x, y, z, intensity; grid (41, 1600, 1408).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ada3d.benchmark.inputs import EncoderInput, PointCloud, Voxelization, cyclic_batches, voxelize_batch
from ada3d.benchmark.weights import seeded_encoder
from ada3d.datasets.io import load_points
from ada3d.models.middle_encoders import SparseEncoder

KITTI_VOXELIZATION = Voxelization(
    voxel_size=(0.05, 0.05, 0.1),
    point_cloud_range=(0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
    max_points_per_voxel=5,
    max_voxels=40000,
    num_features=4,
)


def kitti_frames(data_root: str | Path, names: list[str] | None = None) -> list[Path]:
    """Velodyne files under ``data_root/training/velodyne`` (all, or the ``names`` given, e.g. ``000008``)."""
    folder = Path(data_root) / "training" / "velodyne"
    if names:
        paths = [folder / f"{name}.bin" for name in names]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"KITTI frames not found: {', '.join(missing)}")
    else:
        paths = sorted(folder.glob("*.bin"))
    if not paths:
        raise FileNotFoundError(f"no KITTI velodyne .bin files in {folder}")
    return paths


def load_kitti_frame(path: Path) -> PointCloud:
    """One scan as ``[N, 4]`` x, y, z, reflectance, named by its frame id."""
    return PointCloud(path.stem, torch.from_numpy(load_points(path, 4)))


def voxelize_frame(path: Path, device: torch.device, batch_index: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean voxel features ``[M, 4]`` and ``(b, z, y, x)`` coordinates of one KITTI scan; also its point count."""
    cloud = load_kitti_frame(path)
    features, coors = KITTI_VOXELIZATION(cloud.points.to(device), batch_index)
    return features, coors, len(cloud.points)


def build_inputs(paths: list[Path], device: torch.device, batch_size: int = 1) -> list[EncoderInput]:
    """KITTI scans voxelised on ``device`` in batches of ``batch_size`` (wrapping around, see ``cyclic_batches``)."""
    batches = cyclic_batches([load_kitti_frame(p) for p in paths], batch_size)
    return [voxelize_batch(name, clouds, KITTI_VOXELIZATION, device) for name, clouds in batches]


def build_encoder(device: torch.device, dtype: torch.dtype, seed: int = 0) -> SparseEncoder:
    """The mmdet3d default SECOND encoder (grid (41, 1600, 1408)) with seeded weights (see ``seeded_encoder``)."""
    return seeded_encoder(lambda: SparseEncoder(4, KITTI_VOXELIZATION.sparse_shape), device, dtype, seed)
