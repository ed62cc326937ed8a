"""The benchmark scenarios: an encoder, its voxelisation and the real point clouds it runs on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ada3d.benchmark import centerpoint_nus, sparse_encoder
from ada3d.benchmark.inputs import PointCloud, Voxelization, cyclic_batches

Batches = list[tuple[str, list[PointCloud]]]


@dataclass(frozen=True)
class DataOptions:
    """Where the scenarios find their data, and how much of it they use.

    Attributes:
        kitti_root: KITTI root holding ``training/velodyne/*.bin``.
        kitti_frames: KITTI frame ids to use (None: every scan).
        nuscenes_root: nuScenes root holding ``samples/LIDAR_TOP/*.pcd.bin``.
        sweeps: frames merged into one multi-sweep-like cloud (keyframe included).
    """

    kitti_root: str | Path = "demo/data/kitti"
    kitti_frames: tuple[str, ...] | None = None
    nuscenes_root: str | Path = "demo/data/nuscenes"
    sweeps: int = 10


@dataclass(frozen=True)
class Scenario:
    """One benchmark scenario.

    Attributes:
        name: the ``--scenario`` name.
        title: encoder and data, for table titles.
        notes: how the inputs are built, printed with every table.
        voxelization: points -> voxel features and coordinates.
        build_encoder: ``(device, dtype) -> encoder`` with the scenario's seeded weights; the encoder maps
            ``(features [M, C], coors [M, 4], batch_size)`` to a BEV map and has ``sparse_shape``.
        batches: ``batch_size -> [(name, clouds)]``, each list of clouds one batch.
    """

    name: str
    title: str
    notes: str
    voxelization: Voxelization
    build_encoder: Callable[[torch.device, torch.dtype], nn.Module]
    batches: Callable[[int], Batches]


def _second_kitti(data: DataOptions) -> Scenario:
    def batches(batch_size: int) -> Batches:
        paths = sparse_encoder.kitti_frames(data.kitti_root, list(data.kitti_frames or []))
        return cyclic_batches([sparse_encoder.load_kitti_frame(p) for p in paths], batch_size)

    return Scenario(
        name="second-kitti",
        title="SECOND SparseEncoder, real KITTI scans",
        notes=(
            f"KITTI HDL-64E scans from `{data.kitti_root}`, range [0, -40, -3, 70.4, 40, 1] m, voxels "
            "0.05 x 0.05 x 0.1 m, <= 5 points per voxel, <= 40000 voxels per scan, mean VFE (x, y, z, intensity), "
            "grid (41, 1600, 1408). A batch of B holds B consecutive scans, wrapping around to fill the last batch."
        ),
        voxelization=sparse_encoder.KITTI_VOXELIZATION,
        build_encoder=sparse_encoder.build_encoder,
        batches=batches,
    )


_NUSCENES_NOTES = (
    "nuScenes LIDAR_TOP keyframe(s) from `{root}`, range [-54, -54, -5, 54, 54, 3] m, voxels 0.075 x 0.075 x 0.2 m, "
    "<= 10 points per voxel, <= 160000 voxels per sample, mean VFE (x, y, z, intensity, time lag), "
    "grid (41, 1440, 1440). "
)
_POSES_NOTES = (
    "A batch of B holds the cloud in B poses: pose p rotated by 45p degrees about z, mirrored in y for odd p."
)


def _centerpoint_nus(data: DataOptions) -> Scenario:
    def batches(batch_size: int) -> Batches:
        keyframes = centerpoint_nus.nuscenes_keyframes(data.nuscenes_root)
        return [centerpoint_nus.augmented_batch(centerpoint_nus.load_keyframe(p), batch_size) for p in keyframes]

    return Scenario(
        name="centerpoint-nus",
        title="CenterPoint VoxelResBackBone8x, real nuScenes keyframe",
        notes=_NUSCENES_NOTES.format(root=data.nuscenes_root) + "Keyframe only (time lag 0). " + _POSES_NOTES,
        voxelization=centerpoint_nus.NUSCENES_VOXELIZATION,
        build_encoder=centerpoint_nus.build_encoder,
        batches=batches,
    )


def _centerpoint_nus_multisweep(data: DataOptions) -> Scenario:
    motion = centerpoint_nus.EgoMotion()

    def batches(batch_size: int) -> Batches:
        keyframes = centerpoint_nus.nuscenes_keyframes(data.nuscenes_root)
        merged = [
            centerpoint_nus.merge_sweeps(centerpoint_nus.load_keyframe(p), data.sweeps, motion) for p in keyframes
        ]
        return [centerpoint_nus.augmented_batch(cloud, batch_size) for cloud in merged]

    return Scenario(
        name="centerpoint-nus-multisweep",
        title=f"CenterPoint VoxelResBackBone8x, nuScenes keyframe + {data.sweeps - 1} synthetic sweeps",
        notes=(
            _NUSCENES_NOTES.format(root=data.nuscenes_root)
            + f"Multi-sweep-like input: the real keyframe merged with copies k = 1..{data.sweeps - 1} of itself, "
            f"copy k rotated by -{motion.yaw_deg}k degrees about z and moved {motion.step_m}k m backwards along x "
            f"(ego motion of {motion.step_m} m and {motion.yaw_deg} degrees per 0.05 s sweep), "
            f"time lag {centerpoint_nus.SWEEP_INTERVAL_S}k s. " + _POSES_NOTES
        ),
        voxelization=centerpoint_nus.NUSCENES_VOXELIZATION,
        build_encoder=centerpoint_nus.build_encoder,
        batches=batches,
    )


SCENARIOS: dict[str, Callable[[DataOptions], Scenario]] = {
    "second-kitti": _second_kitti,
    "centerpoint-nus": _centerpoint_nus,
    "centerpoint-nus-multisweep": _centerpoint_nus_multisweep,
}


def build_scenario(name: str, data: DataOptions | None = None) -> Scenario:
    """The scenario called ``name`` (a key of :data:`SCENARIOS`) reading its data as ``data`` says."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    return SCENARIOS[name](DataOptions() if data is None else data)
