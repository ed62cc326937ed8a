"""Base class of modules that take and return :class:`~sparse_ops.SparseTensor`."""

from torch import nn


class SparseModule(nn.Module):
    """Marker base: :class:`SparseSequential` passes the whole SparseTensor to these modules,
    and only the features to every other module."""
