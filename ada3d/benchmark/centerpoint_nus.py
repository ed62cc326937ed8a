"""CenterPoint's VoxelResBackBone8x on a real nuScenes LIDAR_TOP keyframe, single- and multi-sweep-like.

Voxelisation as OpenPCDet's ``cbgs_voxel0075_res3d_centerpoint`` (mmdet3d's CenterPoint 0.075 config
agrees except for its 120000 test-time voxel cap): range [-54, -54, -5, 54, 54, 3] m, voxels
0.075 x 0.075 x 0.2 m, at most 10 points per voxel and 160000 voxels, grid (41, 1440, 1440).
Point features as mmdet3d loads nuScenes: the file's x, y, z, intensity and, in place of its fifth
column (the laser ring), the time lag to the keyframe in seconds (0 for the keyframe itself).

nuScenes ships 20 Hz sweeps between its 2 Hz keyframes, and CenterPoint merges the keyframe with
9 earlier sweeps. No sweep of our keyframe is public in a repository, so :func:`merge_sweeps` builds a
multi-sweep-like cloud from the keyframe alone: sweep ``k`` is the keyframe as a sensor ``k`` steps of
ego motion earlier would place it in the current frame (rotated by ``-k * yaw`` about z, moved
``k * step`` backwards along x), with time lag ``k * 0.05`` s. Static structure is then seen from
shifted scan patterns, which is what makes real merged sweeps denser than one keyframe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ada3d.benchmark.inputs import PointCloud, Voxelization
from ada3d.benchmark.weights import seeded_encoder
from ada3d.datasets.io import load_points
from ada3d.models.middle_encoders import VoxelResBackBone8x

NUSCENES_VOXELIZATION = Voxelization(
    voxel_size=(0.075, 0.075, 0.2),
    point_cloud_range=(-54.0, -54.0, -5.0, 54.0, 54.0, 3.0),
    max_points_per_voxel=10,
    max_voxels=160000,
    num_features=5,
)
SWEEP_INTERVAL_S = 0.05  # the LIDAR_TOP spins at 20 Hz


@dataclass(frozen=True)
class EgoMotion:
    """Ego motion between consecutive sweeps: ``step_m`` forward (0.5 m at 20 Hz = 10 m/s) and a
    ``yaw_deg`` turn (0.2 degrees = 4 degrees/s)."""

    step_m: float = 0.5
    yaw_deg: float = 0.2


def nuscenes_keyframes(data_root: str | Path) -> list[Path]:
    """The LIDAR_TOP keyframes ``data_root/samples/LIDAR_TOP/*.pcd.bin``."""
    folder = Path(data_root) / "samples" / "LIDAR_TOP"
    paths = sorted(folder.glob("*.pcd.bin"))
    if not paths:
        raise FileNotFoundError(f"no nuScenes LIDAR_TOP .pcd.bin keyframes in {folder}")
    return paths


def load_keyframe(path: Path) -> PointCloud:
    """``[N, 5]`` x, y, z, intensity, time lag 0 s; named by the file's timestamp (microseconds)."""
    points = torch.from_numpy(load_points(path, 5)).clone()
    points[:, 4] = 0.0  # the ring index becomes the time lag, as mmdet3d's multi-sweep loading does
    name = path.name.removesuffix(".pcd.bin").rsplit("__", 1)[-1]
    return PointCloud(name, points)


def _rotate_z(points: torch.Tensor, angle: float) -> torch.Tensor:
    """A copy of ``points`` with x, y rotated by ``angle`` radians about the z axis."""
    cos, sin = math.cos(angle), math.sin(angle)
    rotated = points.clone()
    rotated[:, 0] = cos * points[:, 0] - sin * points[:, 1]
    rotated[:, 1] = sin * points[:, 0] + cos * points[:, 1]
    return rotated


def merge_sweeps(keyframe: PointCloud, num_sweeps: int, motion: EgoMotion | None = None) -> PointCloud:
    """The keyframe merged with ``num_sweeps - 1`` ego-motion-shifted copies of itself (see the module doc).

    Returns ``[num_sweeps * N, 5]`` points, the keyframe's first, then sweep 1, 2, ...
    """
    if num_sweeps < 1:
        raise ValueError(f"num_sweeps must be >= 1, got {num_sweeps}")
    motion = EgoMotion() if motion is None else motion
    sweeps = [keyframe.points]
    for k in range(1, num_sweeps):
        sweep = _rotate_z(keyframe.points, -math.radians(k * motion.yaw_deg))
        sweep[:, 0] -= k * motion.step_m
        sweep[:, 4] = k * SWEEP_INTERVAL_S
        sweeps.append(sweep)
    return PointCloud(f"{keyframe.name} + {num_sweeps - 1} sweeps", torch.cat(sweeps))


def augment(cloud: PointCloud, pose: int) -> PointCloud:
    """Pose ``pose`` of a cloud: rotated by ``pose * 45`` degrees about z, mirrored in y for odd poses
    (pose 0 is the cloud itself). Gives the samples of a batch distinct sites from one real scan."""
    if pose == 0:
        return cloud
    points = _rotate_z(cloud.points, math.radians(45 * pose))
    if pose % 2:
        points[:, 1] = -points[:, 1]
    return PointCloud(f"{cloud.name} pose {pose}", points)


def augmented_batch(cloud: PointCloud, batch_size: int) -> tuple[str, list[PointCloud]]:
    """One batch of ``batch_size`` poses of ``cloud`` (:func:`augment` 0 .. batch_size - 1)."""
    name = cloud.name if batch_size == 1 else f"{cloud.name}, {batch_size} poses"
    return name, [augment(cloud, pose) for pose in range(batch_size)]


def build_encoder(device: torch.device, dtype: torch.dtype, seed: int = 0) -> VoxelResBackBone8x:
    """CenterPoint's encoder on the nuScenes grid (41, 1440, 1440), seeded weights (see ``seeded_encoder``)."""
    return seeded_encoder(lambda: VoxelResBackBone8x(5, NUSCENES_VOXELIZATION.sparse_shape), device, dtype, seed)
