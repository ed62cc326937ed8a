"""Dense float64 references for sparse ops, written independently of sparse_ops' own code paths."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

_CONV = {2: F.conv2d, 3: F.conv3d}
_CONV_T = {2: F.conv_transpose2d, 3: F.conv_transpose3d}
_MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``|actual - expected| / |expected|`` (Frobenius norms), computed in float64 on the CPU."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    return float((actual - expected).norm() / expected.norm().clamp_min(1e-12))


def densify(features: torch.Tensor, indices: torch.Tensor, spatial_shape, batch_size: int, fill: float = 0.0):
    """``[B, C, *spatial]`` grid with ``features`` at ``indices`` and ``fill`` elsewhere (differentiable)."""
    grid = torch.full((batch_size, *spatial_shape, features.shape[1]), fill, dtype=features.dtype)
    grid = grid.index_put(tuple(indices.long().unbind(1)), features)
    return grid.movedim(-1, 1)


def sample(grid: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Rows of ``grid`` ``[B, C, *spatial]`` at ``indices`` ``[N, 1 + D]`` -> ``[N, C]``."""
    return grid.movedim(1, -1)[tuple(indices.long().unbind(1))]


def dense_conv(features, indices, spatial_shape, batch_size, weight, bias, geometry, out_indices):
    """A dense convolution evaluated at ``out_indices``; submanifold convs are centred and cropped."""
    ndim = len(spatial_shape)
    grid = densify(features, indices, spatial_shape, batch_size)
    dense_weight = weight.movedim(-1, 1)  # [C_out, C_in, *kernel]
    if geometry.subm:
        padding = [d * (k // 2) for k, d in zip(geometry.kernel_size, geometry.dilation)]
        out = _CONV[ndim](grid, dense_weight, bias, 1, padding, geometry.dilation)
        out = out[(slice(None), slice(None), *(slice(0, s) for s in spatial_shape))]
    else:
        out = _CONV[ndim](grid, dense_weight, bias, geometry.stride, geometry.padding, geometry.dilation)
    return sample(out, out_indices)


def dense_inverse_conv(
    features, indices, spatial_shape, batch_size, weight, bias, geometry, out_spatial_shape, out_indices
):
    """The transposed dense convolution of ``geometry`` back onto ``out_spatial_shape``, at ``out_indices``."""
    ndim = len(spatial_shape)
    grid = densify(features, indices, spatial_shape, batch_size)
    full = [
        (s - 1) * st - 2 * p + d * (k - 1) + 1
        for s, k, st, p, d in zip(
            spatial_shape, geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation
        )
    ]
    output_padding = [t - f for t, f in zip(out_spatial_shape, full)]
    out = _CONV_T[ndim](
        grid, weight.movedim(-1, 0), bias, geometry.stride, geometry.padding, output_padding, 1, geometry.dilation
    )
    return sample(out, out_indices)


def dense_max_pool(features, indices, spatial_shape, batch_size, geometry, out_indices):
    grid = densify(features, indices, spatial_shape, batch_size, fill=float("-inf"))
    pad = [p for p in reversed(geometry.padding) for _ in range(2)]  # explicit: torch caps pooling padding
    grid = F.pad(grid, pad, value=float("-inf"))
    out = _MAX_POOL[len(spatial_shape)](grid, geometry.kernel_size, geometry.stride, 0, geometry.dilation)
    return sample(out, out_indices)


def brute_force_output_sites(indices: torch.Tensor, spatial_shape, geometry) -> set[tuple[int, ...]]:
    """Every output site with at least one input in its receptive field, by looping over sites and offsets."""
    out_shape = [
        (s + 2 * p - d * (k - 1) - 1) // st + 1
        for s, k, st, p, d in zip(
            spatial_shape, geometry.kernel_size, geometry.stride, geometry.padding, geometry.dilation
        )
    ]
    sites = set()
    for row in indices.tolist():
        batch, position = row[0], row[1:]
        for offset in itertools.product(*(range(k) for k in geometry.kernel_size)):
            out = []
            for i, k, st, p, d, extent in zip(
                position, offset, geometry.stride, geometry.padding, geometry.dilation, out_shape
            ):
                scaled = i + p - k * d
                if scaled % st or not 0 <= scaled // st < extent:
                    break
                out.append(scaled // st)
            else:
                sites.add((batch, *out))
    return sites
