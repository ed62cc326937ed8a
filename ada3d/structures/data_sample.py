"""The per-sample record that travels from the dataset's packing transform through the model.

Conventions (shared by datasets, models, metrics and the visualiser):

* ``gt_instances_3d`` / ``pred_instances_3d`` are mmengine ``InstanceData`` with
  ``bboxes_3d``: float Tensor ``[M, 7]`` in the LiDAR frame, ``(x, y, z, l, w, h, yaw)``, metres and
  radians, ``z`` at the box's bottom centre (mmdet3d's LiDAR convention; yaw 0 points along +x,
  counter-clockwise positive), ``labels_3d``: long Tensor ``[M]`` (class index into
  ``metainfo['classes']``), and for predictions ``scores_3d``: float Tensor ``[M]``.
* ``metainfo`` holds ``sample_idx`` and, for KITTI, the calibration (``lidar2cam`` 4x4,
  ``cam2img`` 4x4) and ``img_shape`` so predictions can be converted back to camera boxes.
"""

from mmengine.structures import BaseDataElement, InstanceData


class Det3DDataSample(BaseDataElement):
    """Ground truth and predictions of one point-cloud sample (see the module docstring)."""

    @property
    def gt_instances_3d(self) -> InstanceData:
        return self._gt_instances_3d

    @gt_instances_3d.setter
    def gt_instances_3d(self, value: InstanceData) -> None:
        self.set_field(value, "_gt_instances_3d", dtype=InstanceData)

    @gt_instances_3d.deleter
    def gt_instances_3d(self) -> None:
        del self._gt_instances_3d

    @property
    def pred_instances_3d(self) -> InstanceData:
        return self._pred_instances_3d

    @pred_instances_3d.setter
    def pred_instances_3d(self, value: InstanceData) -> None:
        self.set_field(value, "_pred_instances_3d", dtype=InstanceData)

    @pred_instances_3d.deleter
    def pred_instances_3d(self) -> None:
        del self._pred_instances_3d
