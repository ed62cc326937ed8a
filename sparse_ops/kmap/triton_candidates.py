"""A strided convolution's (input site, kernel position) candidates in one Triton kernel (import only where Triton
is installed).

The torch version (:func:`sparse_ops.kmap.kernel_map._strided_candidates`) builds the ``[C, N]`` output keys and
kernel offsets dimension by dimension: about ten small tensor operations per dimension, each a kernel launch and
a round of Python on the host, which is most of an eager strided map's cost at LiDAR sizes. This kernel writes
both ``[C, N]`` arrays in one pass, with the keys of candidates that land nowhere already set to the padding key.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.utils import linear_strides

_BLOCK = 256


@triton.jit
def _dimension(coord, t, KERNEL: tl.constexpr, STRIDE: tl.constexpr, PADDING: tl.constexpr,
               DILATION: tl.constexpr, EXTENT: tl.constexpr, COUNT: tl.constexpr):  # fmt: skip
    """Kernel position, output coordinate and validity of candidate ``t`` of one dimension (int64 ``[BLOCK]``).

    At dilation 1 the ``COUNT = ceil(KERNEL / STRIDE)`` candidates are the positions ``(coord + PADDING) mod
    STRIDE + t * STRIDE``; otherwise every position ``t < KERNEL`` is a candidate that lands when the stride
    divides ``coord + PADDING - t * DILATION``.
    """
    shifted = coord + PADDING
    if DILATION == 1:
        position = shifted % STRIDE + t * STRIDE
        out = shifted // STRIDE - t
        valid = (position < KERNEL) & (out >= 0) & (out < EXTENT)
    else:
        position = tl.zeros_like(shifted) + t
        scaled = shifted - t * DILATION
        out = scaled // STRIDE  # truncates for negative values: those fail the test below either way
        valid = (scaled == out * STRIDE) & (scaled >= 0) & (out < EXTENT)
    return position, out, valid


@triton.jit
def _strided_candidates_kernel(
    indices_ptr, key_ptr, offset_ptr, num_sites, padding_key, batch_stride,
    D: tl.constexpr,
    K0: tl.constexpr, S0: tl.constexpr, P0: tl.constexpr, L0: tl.constexpr, E0: tl.constexpr, C0: tl.constexpr,
    O0: tl.constexpr, KS0: tl.constexpr,
    K1: tl.constexpr, S1: tl.constexpr, P1: tl.constexpr, L1: tl.constexpr, E1: tl.constexpr, C1: tl.constexpr,
    O1: tl.constexpr, KS1: tl.constexpr,
    K2: tl.constexpr, S2: tl.constexpr, P2: tl.constexpr, L2: tl.constexpr, E2: tl.constexpr, C2: tl.constexpr,
    O2: tl.constexpr, KS2: tl.constexpr,
    BLOCK: tl.constexpr,
):  # fmt: skip
    """Program ``(c, block)``: candidate ``c`` (its per-dimension candidates, the last dimension fastest) of a
    block of sites. Per dimension ``d``: kernel ``Kd``, stride ``Sd``, padding ``Pd``, dilation ``Ld``, output
    extent ``Ed``, candidate count ``Cd``, output key stride ``Od`` and kernel offset stride ``KSd``."""
    c = tl.program_id(0)
    sites = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    in_range = sites < num_sites
    row = indices_ptr + sites.to(tl.int64) * (D + 1)
    batch = tl.load(row, mask=in_range, other=-1).to(tl.int64)
    key = batch * batch_stride
    offset = tl.zeros((BLOCK,), dtype=tl.int64)
    valid = in_range & (batch >= 0)  # padding rows feed no output
    if D == 3:
        t0 = c // (C1 * C2)
        t1 = (c // C2) % C1
        t2 = c % C2
    else:
        t0 = c // C1
        t1 = c % C1
        t2 = 0
    position, out, ok = _dimension(tl.load(row + 1, mask=in_range, other=0).to(tl.int64), t0, K0, S0, P0, L0, E0, C0)
    key += out * O0
    offset += position * KS0
    valid &= ok
    position, out, ok = _dimension(tl.load(row + 2, mask=in_range, other=0).to(tl.int64), t1, K1, S1, P1, L1, E1, C1)
    key += out * O1
    offset += position * KS1
    valid &= ok
    if D == 3:
        position, out, ok = _dimension(tl.load(row + 3, mask=in_range, other=0).to(tl.int64), t2, K2, S2, P2, L2,
                                       E2, C2)  # fmt: skip
        key += out * O2
        offset += position * KS2
        valid &= ok
    target = c.to(tl.int64) * num_sites + sites
    tl.store(key_ptr + target, tl.where(valid, key, padding_key), mask=in_range)
    tl.store(offset_ptr + target, offset, mask=in_range)


def strided_candidates(
    indices: torch.Tensor, out_shape: tuple[int, ...], geometry: ConvGeometry, padding_key: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidates of :func:`sparse_ops.kmap.kernel_map._strided_candidates` for 2D or 3D sites.

    Args:
        indices: ``[N, 1 + D]`` int32 ``(b, *coords)``, rows of batch -1 are padding.
        out_shape: the output grid.
        geometry: the conv's geometry (kernel size, stride, padding, dilation per dimension).
        padding_key: the key of candidates that land nowhere.

    Returns:
        ``[C, N]`` int64 output keys (``padding_key`` where the candidate lands nowhere) and ``[C, N]`` int64
        kernel offsets, in the torch version's order.
    """
    dims = len(out_shape)
    if dims not in (2, 3):
        raise ValueError(f"the Triton candidates handle 2D and 3D convs, got {dims} dimensions")
    num_sites = indices.shape[0]
    out_strides, kernel_strides = linear_strides([1, *out_shape]), linear_strides(geometry.kernel_size)
    per_dim = []
    for d in range(dims):
        kernel, stride, dilation = geometry.kernel_size[d], geometry.stride[d], geometry.dilation[d]
        count = -(-kernel // stride) if dilation == 1 else kernel
        per_dim.append(dict(K=kernel, S=stride, P=geometry.padding[d], L=dilation, E=out_shape[d], C=count,
                            O=out_strides[1 + d], KS=kernel_strides[d]))  # fmt: skip
    if dims == 2:
        per_dim.append(dict(K=1, S=1, P=0, L=1, E=1, C=1, O=0, KS=0))
    num_candidates = per_dim[0]["C"] * per_dim[1]["C"] * per_dim[2]["C"]
    key = torch.empty((num_candidates, num_sites), dtype=torch.int64, device=indices.device)
    offset = torch.empty_like(key)
    if num_sites == 0:
        return key, offset
    constants = {f"{name}{d}": value for d, params in enumerate(per_dim) for name, value in params.items()}
    _strided_candidates_kernel[(num_candidates, triton.cdiv(num_sites, _BLOCK))](
        indices.contiguous(), key, offset, num_sites, padding_key, out_strides[0], D=dims, BLOCK=_BLOCK, **constants
    )
    return key, offset
