"""VoxelNet-style single-stage detector (SECOND): voxels -> VFE -> sparse 3D encoder -> BEV -> head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from mmengine.model import BaseModel
from torch import nn

from ada3d.models.heads.anchor3d_head import AnchorHeadOutputs
from ada3d.registry import MODELS
from ada3d.structures import Det3DDataSample


def _build_stage(config: dict, stage: str, produced: int | list, previous: str) -> nn.Module:
    """Build ``config`` with ``in_channels`` set to what the previous stage produces.

    A config that already names ``in_channels`` (as mmdet3d's do) must agree with it.
    """
    config = dict(config)
    given = config.get("in_channels")
    if given is None:
        config["in_channels"] = produced
    elif (list(given) if isinstance(given, Sequence) else given) != produced:
        raise ValueError(f"{stage}.in_channels = {given} but the {previous} produces {produced} channels")
    return MODELS.build(config)


@MODELS.register_module()
class VoxelNet(BaseModel):
    """SECOND-style detector on hard voxels (mmdet3d's ``VoxelNet``, its argument names).

    Args:
        voxel_encoder, middle_encoder, backbone, neck, bbox_head: stage configs; ``in_channels`` of a stage
            may be left out and is then taken from the previous stage's ``out_channels``.
        train_cfg / test_cfg: handed to the head (assigners; NMS settings).
        data_preprocessor: config (built from ada3d's registry) or module; it batches and voxelises.
        init_cfg: mmengine initialisation config (stages initialise themselves otherwise).

    ``forward(inputs, data_samples, mode)`` with ``inputs['voxels']`` a dict of ``voxels [V, P, C]``,
    ``num_points [V]``, ``coors [V, 4]`` int32 ``(batch, z, y, x)`` and ``batch_size``:

    * ``mode='loss'``: ``dict(loss_cls, loss_bbox, loss_dir)`` against ``data_samples[i].gt_instances_3d``;
    * ``mode='predict'``: the data samples with ``pred_instances_3d`` (``bboxes_3d [K, 7]`` LiDAR,
      ``scores_3d``, ``labels_3d``);
    * ``mode='tensor'``: the head's raw :class:`AnchorHeadOutputs`.
    """

    def __init__(
        self,
        voxel_encoder: dict,
        middle_encoder: dict,
        backbone: dict,
        bbox_head: dict,
        neck: dict | None = None,
        train_cfg: dict | None = None,
        test_cfg: dict | None = None,
        data_preprocessor: dict | nn.Module | None = None,
        init_cfg: dict | None = None,
    ) -> None:
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.voxel_encoder = MODELS.build(voxel_encoder)
        self.middle_encoder = _build_stage(middle_encoder, "middle_encoder", self.voxel_encoder.out_channels,
                                           "voxel_encoder")
        self.backbone = _build_stage(backbone, "backbone", self.middle_encoder.out_channels, "middle_encoder")
        features = self.backbone
        self.neck = None
        if neck is not None:
            self.neck = _build_stage(neck, "neck", self.backbone.out_channels, "backbone")
            features = self.neck
        if len(set(features.out_channels)) != 1:
            raise ValueError(f"the head is shared by all feature maps, which must have equal channels; "
                             f"got {features.out_channels}")
        head = dict(bbox_head, train_cfg=train_cfg, test_cfg=test_cfg)
        self.bbox_head = _build_stage(head, "bbox_head", features.out_channels[0], "neck" if neck else "backbone")
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg

    def encode_3d(self, voxels: dict) -> torch.Tensor:
        """The 3D part: VFE and sparse encoder, ``inputs['voxels']`` -> BEV ``[B, C, H, W]``."""
        features = self.voxel_encoder(voxels["voxels"], voxels["num_points"])
        return self.middle_encoder(features, voxels["coors"], voxels["batch_size"])

    def encode_2d(self, bev: torch.Tensor) -> list[torch.Tensor]:
        """The 2D part: BEV backbone and neck -> the head's feature maps ``[B, C, H_i, W_i]``."""
        maps = self.backbone(bev)
        return list(self.neck(maps) if self.neck is not None else maps)

    def extract_feat(self, inputs: dict) -> list[torch.Tensor]:
        """BEV feature maps ``[B, C, H, W]`` (one per level) of ``inputs['voxels']``."""
        if "voxels" not in inputs:
            raise ValueError(f"VoxelNet needs inputs['voxels'] from a voxelising data preprocessor, got keys "
                             f"{sorted(inputs)}")
        voxels = inputs["voxels"]
        if "batch_size" not in voxels:
            raise ValueError("inputs['voxels'] needs 'batch_size' (set by the data preprocessor; it cannot be "
                             "read from coors when trailing samples have no voxels)")
        return self.encode_2d(self.encode_3d(voxels))

    def loss(self, inputs: dict, data_samples: Sequence[Det3DDataSample]) -> dict:
        """The head's losses against ``data_samples[i].gt_instances_3d``."""
        return self.bbox_head.loss(self.extract_feat(inputs), data_samples)

    def forward(
        self, inputs: dict, data_samples: Sequence[Det3DDataSample] | None = None, mode: str = "tensor"
    ) -> dict | list[Det3DDataSample] | AnchorHeadOutputs:
        if mode not in ("loss", "predict", "tensor"):
            raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")
        if mode != "tensor" and data_samples is None:
            raise ValueError(f"mode={mode!r} needs data_samples")
        if mode == "loss":
            return self.loss(inputs, data_samples)
        features = self.extract_feat(inputs)
        if mode == "tensor":
            return self.bbox_head(features)
        for sample, result in zip(data_samples, self.bbox_head.predict(features)):
            sample.pred_instances_3d = result
        return list(data_samples)
