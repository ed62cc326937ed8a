"""The last pipeline step: a sample as model inputs and a :class:`~ada3d.structures.Det3DDataSample`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData

from ada3d.datasets.transforms.base import BaseTransform
from ada3d.registry import TRANSFORMS
from ada3d.structures import Det3DDataSample

# results key -> (InstanceData field, dtype); 3D targets go to gt_instances_3d, image targets to gt_instances
_INSTANCE_FIELDS_3D = {"gt_bboxes_3d": ("bboxes_3d", torch.float32), "gt_labels_3d": ("labels_3d", torch.long)}
_INSTANCE_FIELDS_2D = {"gt_bboxes": ("bboxes", torch.float32), "gt_bboxes_labels": ("labels", torch.long)}

DEFAULT_META_KEYS = (
    "sample_idx", "frame_idx", "lidar_path", "img_path", "num_pts_feats", "lidar2cam", "cam2img", "lidar2img",
    "img_shape", "flip", "flip_direction", "pcd_horizontal_flip", "pcd_vertical_flip", "pcd_rotation",
    "pcd_rotation_angle", "pcd_scale_factor", "pcd_trans", "transformation_3d_flow",
)


@TRANSFORMS.register_module()
class Pack3DDetInputs(BaseTransform):
    """Pack a sample as ``dict(inputs=dict(points=Tensor [N, C]), data_samples=Det3DDataSample)``.

    Args:
        keys: what to pack: ``points`` (the model input), ``gt_bboxes_3d`` / ``gt_labels_3d`` (->
            ``gt_instances_3d.bboxes_3d`` float32 ``[M, 7]`` / ``labels_3d`` int64 ``[M]``), ``gt_bboxes`` /
            ``gt_bboxes_labels`` (-> ``gt_instances.bboxes`` / ``labels``). Keys absent from a sample are skipped.
        meta_keys: results entries copied into the data sample's metainfo when present (see
            :data:`DEFAULT_META_KEYS`).

    The data sample always has ``gt_instances_3d`` (empty when no 3D target was packed) and ``eval_ann_info``
    (the dataset's annotations in test mode with ``load_eval_anns``, else None).
    """

    def __init__(
        self,
        keys: Sequence[str] = ("points", "gt_bboxes_3d", "gt_labels_3d"),
        meta_keys: Sequence[str] = DEFAULT_META_KEYS,
    ) -> None:
        known = {"points", *_INSTANCE_FIELDS_3D, *_INSTANCE_FIELDS_2D}
        if unknown := set(keys) - known:
            raise ValueError(f"Pack3DDetInputs cannot pack {sorted(unknown)}; it packs {sorted(known)}")
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        inputs = {}
        if "points" in self.keys and "points" in results:
            inputs["points"] = torch.from_numpy(np.ascontiguousarray(results["points"], dtype=np.float32))
        sample = Det3DDataSample(metainfo={key: results[key] for key in self.meta_keys if key in results})
        sample.gt_instances_3d = self._instances(results, _INSTANCE_FIELDS_3D)
        if any(key in self.keys for key in _INSTANCE_FIELDS_2D):
            sample.gt_instances = self._instances(results, _INSTANCE_FIELDS_2D)
        sample.eval_ann_info = results.get("eval_ann_info")
        return dict(inputs=inputs, data_samples=sample)

    def _instances(self, results: dict, fields: dict) -> InstanceData:
        instances = InstanceData()
        for key, (name, dtype) in fields.items():
            if key in self.keys and key in results:
                instances[name] = torch.as_tensor(np.asarray(results[key]), dtype=dtype)
        return instances
