"""sparse_ops: a sparse-convolution engine for LiDAR voxel networks (spconv v2 semantics).

Depends on PyTorch only. ``SparseTensor`` holds the features at active sites, ``sparse_ops.nn``
the modules (weights ``[C_out, *kernel, C_in]``), ``sparse_ops.kmap`` the kernel maps.
"""

from sparse_ops import nn
from sparse_ops.autotune import TuningReport, tune
from sparse_ops.conv import sparse_conv
from sparse_ops.kmap import ConvGeometry, KernelMap, build_kernel_map
from sparse_ops.pool import sparse_max_pool
from sparse_ops.tensor import SparseTensor

__version__ = "0.1.0"

__all__ = [
    "ConvGeometry",
    "KernelMap",
    "SparseTensor",
    "TuningReport",
    "build_kernel_map",
    "nn",
    "sparse_conv",
    "sparse_max_pool",
    "tune",
]
