"""Detection heads over BEV feature maps."""

from ada3d.models.heads.anchor3d_head import Anchor3DHead, AnchorHeadOutputs, AnchorTargets

__all__ = ["Anchor3DHead", "AnchorHeadOutputs", "AnchorTargets"]
