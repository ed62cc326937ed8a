"""Sparse convolution dataflows behind one functional entry point."""

from sparse_ops.conv.functional import sparse_conv

__all__ = ["sparse_conv"]
