"""Strategies shared by the sparse_ops tests: random sparse tensors and convolution geometries."""

from __future__ import annotations

import torch
from hypothesis import assume
from hypothesis import strategies as st

from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConvolution


def random_sparse_tensor(spatial_shape, batch_size, channels, density, seed, dtype=torch.float64) -> SparseTensor:
    """Sites drawn independently with probability ``density`` (at least one site overall)."""
    generator = torch.Generator().manual_seed(seed)
    occupied = torch.rand((batch_size, *spatial_shape), generator=generator) < density
    if not occupied.any():
        occupied.view(-1)[0] = True
    indices = occupied.nonzero().int()
    indices = indices[torch.randperm(len(indices), generator=generator)]  # sparse_ops must not rely on order
    features = torch.randn(len(indices), channels, generator=generator, dtype=dtype)
    return SparseTensor(features, indices, spatial_shape, batch_size)


@st.composite
def conv_cases(draw, subm: bool = False):
    """A random input tensor and a geometry whose output grid is non-empty."""
    ndim = draw(st.sampled_from([2, 3]))
    max_extent = 7 if ndim == 3 else 11
    spatial_shape = tuple(draw(st.integers(1, max_extent)) for _ in range(ndim))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(ndim))
    if subm:
        stride, padding = (1,) * ndim, (0,) * ndim
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(ndim))
        padding = tuple(draw(st.integers(0, 2)) for _ in range(ndim))
        assume(all(s + 2 * p - d * (k - 1) >= 1 for s, k, p, d in zip(spatial_shape, kernel, padding, dilation)))
    return dict(
        ndim=ndim,
        spatial_shape=spatial_shape,
        batch_size=draw(st.integers(1, 3)),
        in_channels=draw(st.integers(1, 4)),
        out_channels=draw(st.integers(1, 4)),
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        density=draw(st.sampled_from([0.05, 0.2, 0.6, 1.0])),
        bias=draw(st.booleans()),
        seed=draw(st.integers(0, 2**16)),
    )


def case_conv(case: dict, subm: bool = False, indice_key: str | None = None) -> SparseConvolution:
    """The float32 convolution a :func:`conv_cases` case describes (submanifold ones ignore stride and padding)."""
    stride, padding = (1, 0) if subm else (case["stride"], case["padding"])
    return SparseConvolution(
        case["ndim"], case["in_channels"], case["out_channels"], case["kernel_size"], stride, padding,
        case["dilation"], bias=case["bias"], subm=subm, indice_key=indice_key,
    )  # fmt: skip


def case_tensor(case: dict, dtype=torch.float64) -> SparseTensor:
    """The random input a :func:`conv_cases` case describes."""
    return random_sparse_tensor(
        case["spatial_shape"], case["batch_size"], case["in_channels"], case["density"], case["seed"], dtype
    )
