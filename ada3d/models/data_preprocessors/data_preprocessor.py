"""The data preprocessor of point-cloud detectors: batch on the model's device, then voxelise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from mmengine.dataset import pseudo_collate
from mmengine.model import BaseDataPreprocessor

from ada3d.ops.voxelize import dynamic_voxelize, hard_voxelize
from ada3d.registry import MODELS

VOXEL_TYPES = ("hard", "dynamic")


@dataclass(frozen=True)
class VoxelLayer:
    """Voxelisation settings, mmdet3d's ``voxel_layer`` config.

    Attributes:
        voxel_size: ``(dx, dy, dz)`` metres.
        point_cloud_range: ``(x0, y0, z0, x1, y1, z1)`` metres.
        max_num_points: points kept per voxel (hard); ``-1`` for dynamic voxelisation (every point kept).
        max_voxels: voxels kept per sample ``(training, evaluation)`` (hard); ``(-1, -1)`` for dynamic.
    """

    voxel_size: tuple[float, float, float]
    point_cloud_range: tuple[float, float, float, float, float, float]
    max_num_points: int = -1
    max_voxels: tuple[int, int] = (-1, -1)

    @classmethod
    def from_config(cls, config: Mapping, voxel_type: str) -> VoxelLayer:
        """Check and convert a ``voxel_layer`` dict; ``max_voxels`` may be one int for both phases."""
        known = {"voxel_size", "point_cloud_range", "max_num_points", "max_voxels"}
        if unknown := set(config) - known:
            raise ValueError(f"voxel_layer has unknown keys {sorted(unknown)}; allowed: {sorted(known)}")
        if "voxel_size" not in config or "point_cloud_range" not in config:
            raise ValueError(f"voxel_layer needs voxel_size and point_cloud_range, got {dict(config)}")
        max_voxels = config.get("max_voxels", -1)
        max_voxels = (max_voxels, max_voxels) if isinstance(max_voxels, int) else tuple(max_voxels)
        layer = cls(
            voxel_size=tuple(float(v) for v in config["voxel_size"]),
            point_cloud_range=tuple(float(v) for v in config["point_cloud_range"]),
            max_num_points=int(config.get("max_num_points", -1)),
            max_voxels=max_voxels,
        )
        if len(layer.voxel_size) != 3 or len(layer.point_cloud_range) != 6 or len(layer.max_voxels) != 2:
            raise ValueError(f"voxel_layer: voxel_size needs 3 values, point_cloud_range 6, max_voxels 1 or 2: {layer}")
        if voxel_type == "hard" and (layer.max_num_points < 1 or min(layer.max_voxels) < 1):
            raise ValueError(f"hard voxelisation needs max_num_points >= 1 and max_voxels >= 1, got {layer}")
        if voxel_type == "dynamic" and (layer.max_num_points != -1 or layer.max_voxels != (-1, -1)):
            raise ValueError(
                f"dynamic voxelisation keeps every point: leave max_num_points and max_voxels out (or -1), got {layer}"
            )
        return layer


@MODELS.register_module()
class Det3DDataPreprocessor(BaseDataPreprocessor):
    """Moves a batch to the model's device and voxelises its point clouds.

    Args:
        voxel: voxelise (otherwise only the points are batched).
        voxel_type: ``'hard'`` (at most ``max_num_points`` per voxel, ``max_voxels`` voxels per sample) or
            ``'dynamic'`` (a voxel coordinate for every point).
        voxel_layer: the :class:`VoxelLayer` settings as a dict, e.g. ``dict(max_num_points=5,
            point_cloud_range=[0, -40, -3, 70.4, 40, 1], voxel_size=[0.05, 0.05, 0.1], max_voxels=(16000, 40000))``;
            the first ``max_voxels`` applies in training, the second in evaluation.
        non_blocking: asynchronous host-to-device copies.

    Input: ``dict(inputs=dict(points=list[Tensor [N_i, C]]), data_samples=list)`` as collated by mmengine's
    ``pseudo_collate`` (a list of per-sample dicts is collated here).

    Output: ``dict(inputs=dict(points=list[Tensor [N_i, C]], voxels=...), data_samples=list)`` on the model's device;
    ``voxels`` (only with ``voxel=True``) is, for hard voxelisation,
    ``dict(voxels=[V, max_num_points, C], num_points=[V] int32, coors=[V, 4] int32 (batch, z, y, x), batch_size)``
    and for dynamic voxelisation ``dict(points=[sum N_i, C], coors=[sum N_i, 4] int32 (batch, z, y, x), batch_size)``
    with ``z = y = x = -1`` for points outside the range. ``batch_size`` is the number of samples, empty ones
    included; never derive it from ``coors``.
    """

    def __init__(
        self,
        voxel: bool = False,
        voxel_type: str = "hard",
        voxel_layer: dict | None = None,
        non_blocking: bool = False,
    ) -> None:
        super().__init__(non_blocking=non_blocking)
        if voxel_type not in VOXEL_TYPES:
            raise ValueError(f"voxel_type must be one of {VOXEL_TYPES}, got {voxel_type!r}")
        if voxel and voxel_layer is None:
            raise ValueError("voxel=True needs a voxel_layer dict (voxel_size, point_cloud_range, ...)")
        self.voxel = voxel
        self.voxel_type = voxel_type
        self.voxel_layer = VoxelLayer.from_config(voxel_layer, voxel_type) if voxel else None

    def forward(self, data: dict | list, training: bool = False) -> dict:
        if isinstance(data, list):
            data = pseudo_collate(data)
        data = self.cast_data(data)
        points = self._checked_points(data["inputs"].get("points"))
        inputs = dict(points=points)
        if self.voxel and self.voxel_type == "hard":
            inputs["voxels"] = self.hard_voxels(points, training)
        elif self.voxel:
            inputs["voxels"] = self.dynamic_voxels(points)
        return dict(inputs=inputs, data_samples=data.get("data_samples"))

    def hard_voxels(self, points: list[torch.Tensor], training: bool) -> dict:
        """Hard voxelisation of every sample, concatenated with the sample index as the first coordinate."""
        layer = self.voxel_layer
        max_voxels = layer.max_voxels[0 if training else 1]
        parts = [
            hard_voxelize(p, layer.voxel_size, layer.point_cloud_range, layer.max_num_points, max_voxels)
            for p in points
        ]
        return dict(
            voxels=torch.cat([part.points for part in parts]),
            num_points=torch.cat([part.num_points for part in parts]),
            coors=torch.cat([_with_batch_index(part.coords, index) for index, part in enumerate(parts)]),
            batch_size=len(points),
        )

    def dynamic_voxels(self, points: list[torch.Tensor]) -> dict:
        """Voxel coordinates of every point of every sample (``-1`` outside the range), points concatenated."""
        layer = self.voxel_layer
        coors = [
            _with_batch_index(dynamic_voxelize(p, layer.voxel_size, layer.point_cloud_range), index)
            for index, p in enumerate(points)
        ]
        return dict(points=torch.cat(points), coors=torch.cat(coors), batch_size=len(points))

    @staticmethod
    def _checked_points(points: Sequence[torch.Tensor] | None) -> list[torch.Tensor]:
        if not points:
            raise ValueError("the batch has no point clouds: inputs['points'] must be a non-empty list of [N, C]")
        shapes = [tuple(p.shape) for p in points]
        if any(len(shape) != 2 or shape[1] < 3 for shape in shapes) or len({shape[1] for shape in shapes}) != 1:
            raise ValueError(f"point clouds must be [N, C>=3] tensors with one C for the batch, got shapes {shapes}")
        return list(points)


def _with_batch_index(coords: torch.Tensor, index: int) -> torch.Tensor:
    """``[V, 3]`` ``(z, y, x)`` -> ``[V, 4]`` int32 ``(index, z, y, x)``."""
    batch = torch.full((len(coords), 1), index, dtype=torch.int32, device=coords.device)
    return torch.cat([batch, coords.int()], dim=1)
