"""Building blocks shared by detector stages."""

from ada3d.models.layers.norm import build_norm_layer
from ada3d.models.layers.sparse_block import make_sparse_convmodule

__all__ = ["build_norm_layer", "make_sparse_convmodule"]
