"""Necks between BEV backbones and detection heads."""

from ada3d.models.necks.second_fpn import SECONDFPN
from ada3d.models.necks.sparse_second_fpn import SparseSECONDFPN

__all__ = ["SECONDFPN", "SparseSECONDFPN"]
