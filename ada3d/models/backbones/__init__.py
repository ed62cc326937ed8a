"""BEV backbones: SECOND (dense) and SparseSECOND (sparse_ops 2D convolutions on the kept pixels)."""

from ada3d.models.backbones.second import SECOND
from ada3d.models.backbones.sparse_second import SparseSECOND

__all__ = ["SECOND", "SparseSECOND"]
