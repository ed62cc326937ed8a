"""Kernel-map construction: output sites of strided convs, (input, output) pairs per kernel offset."""

from sparse_ops.kmap.cache import KernelMapCache
from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.kmap.kernel_map import KernelMap, build_kernel_map

__all__ = ["ConvGeometry", "KernelMap", "KernelMapCache", "build_kernel_map"]
