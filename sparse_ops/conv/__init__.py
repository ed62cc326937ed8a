"""Sparse convolution dataflows behind one functional entry point."""

from sparse_ops.conv.config import ConvConfig
from sparse_ops.conv.functional import default_config, sparse_conv

__all__ = ["ConvConfig", "default_config", "sparse_conv"]
