"""Anchor generation, box coding, anchor assignment and sampling, registered in ``TASK_UTILS``."""

from ada3d.models.task_modules.anchor_generator import AlignedAnchor3DRangeGenerator, Anchor3DRangeGenerator
from ada3d.models.task_modules.assigner import AssignResult, Max3DIoUAssigner
from ada3d.models.task_modules.box_coder import DeltaXYZWLHRBBoxCoder
from ada3d.models.task_modules.iou_calculators import BboxOverlaps3D, BboxOverlapsNearest3D, BboxOverlapsRotatedBEV
from ada3d.models.task_modules.sampler import PseudoSampler, SamplingResult

__all__ = [
    "AlignedAnchor3DRangeGenerator",
    "Anchor3DRangeGenerator",
    "AssignResult",
    "BboxOverlaps3D",
    "BboxOverlapsNearest3D",
    "BboxOverlapsRotatedBEV",
    "DeltaXYZWLHRBBoxCoder",
    "Max3DIoUAssigner",
    "PseudoSampler",
    "SamplingResult",
]
