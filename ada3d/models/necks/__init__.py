"""Necks between BEV backbones and detection heads."""

from ada3d.models.necks.second_fpn import SECONDFPN

__all__ = ["SECONDFPN"]
