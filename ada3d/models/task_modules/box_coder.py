"""Residual encoding of boxes against anchors (SECOND's coder; mmdet3d's ``DeltaXYZWLHRBBoxCoder``)."""

from __future__ import annotations

import torch

from ada3d.registry import TASK_UTILS


@TASK_UTILS.register_module()
class DeltaXYZWLHRBBoxCoder:
    """Encode boxes as deltas from anchors, and back.

    For anchor ``a`` and box ``g`` (LiDAR boxes, z at the bottom, compared at the box centres
    ``z + h / 2``), with ``d = sqrt(l_a^2 + w_a^2)`` the anchor's BEV diagonal::

        dx = (x_g - x_a) / d     dy = (y_g - y_a) / d     dz = (zc_g - zc_a) / h_a
        dl = log(l_g / l_a)      dw = log(w_g / w_a)      dh = log(h_g / h_a)
        dyaw = yaw_g - yaw_a     extra columns (velocities): g - a

    Args:
        code_size: columns of a box and of its code (7, or 9 with velocities).
    """

    def __init__(self, code_size: int = 7) -> None:
        if code_size < 7:
            raise ValueError(f"code_size must be >= 7 (x, y, z, l, w, h, yaw), got {code_size}")
        self.code_size = code_size

    def _check(self, tensor: torch.Tensor, name: str) -> None:
        if tensor.shape[-1] != self.code_size:
            raise ValueError(f"{name} must have {self.code_size} columns, got shape {tuple(tensor.shape)}")

    def encode(self, anchors: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Deltas ``[..., code_size]`` that turn ``anchors`` into ``boxes`` (both ``[..., code_size]``)."""
        self._check(anchors, "anchors")
        self._check(boxes, "boxes")
        diagonal = torch.hypot(anchors[..., 3], anchors[..., 4])
        centre_z_anchor = anchors[..., 2] + anchors[..., 5] / 2
        centre_z_box = boxes[..., 2] + boxes[..., 5] / 2
        deltas = [
            (boxes[..., 0] - anchors[..., 0]) / diagonal,
            (boxes[..., 1] - anchors[..., 1]) / diagonal,
            (centre_z_box - centre_z_anchor) / anchors[..., 5],
            *(torch.log(boxes[..., k] / anchors[..., k]) for k in (3, 4, 5)),
            boxes[..., 6] - anchors[..., 6],
        ]
        return torch.cat([torch.stack(deltas, dim=-1), boxes[..., 7:] - anchors[..., 7:]], dim=-1)

    def decode(self, anchors: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
        """Boxes ``[..., code_size]`` from ``anchors`` and predicted ``deltas`` (the inverse of :meth:`encode`)."""
        self._check(anchors, "anchors")
        self._check(deltas, "deltas")
        diagonal = torch.hypot(anchors[..., 3], anchors[..., 4])
        sizes = [torch.exp(deltas[..., k]) * anchors[..., k] for k in (3, 4, 5)]
        centre_z = deltas[..., 2] * anchors[..., 5] + anchors[..., 2] + anchors[..., 5] / 2
        boxes = [
            deltas[..., 0] * diagonal + anchors[..., 0],
            deltas[..., 1] * diagonal + anchors[..., 1],
            centre_z - sizes[2] / 2,
            *sizes,
            deltas[..., 6] + anchors[..., 6],
        ]
        return torch.cat([torch.stack(boxes, dim=-1), deltas[..., 7:] + anchors[..., 7:]], dim=-1)
