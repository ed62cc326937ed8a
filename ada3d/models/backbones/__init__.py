"""Dense BEV backbones."""

from ada3d.models.backbones.second import SECOND

__all__ = ["SECOND"]
