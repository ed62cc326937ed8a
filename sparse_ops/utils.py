"""Small helpers shared by the sparse_ops modules."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch


def to_tuple(value: int | Sequence[int], ndim: int, name: str) -> tuple[int, ...]:
    """Expand an int to an ``ndim``-tuple, or check a sequence has ``ndim`` ints.

    Raises:
        ValueError: if ``value`` is a sequence of the wrong length or holds non-integers.
    """
    if isinstance(value, int):
        return (value,) * ndim
    result = tuple(value)
    if len(result) != ndim or not all(isinstance(v, int) for v in result):
        raise ValueError(f"{name} must be an int or {ndim} ints, got {value!r}")
    return result


def linear_strides(shape: Sequence[int]) -> list[int]:
    """Row-major strides of ``shape`` (the last dimension varies fastest)."""
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (it is an optional, GPU-side dependency)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=512)
def device_constant(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A cached int64 tensor of ``values`` on ``device``; callers must not modify it.

    Small constants (strides, key offsets) are copied to the GPU once instead of on every call: the
    copies cost host time, and a CUDA graph cannot capture them.
    """
    return torch.tensor(values, dtype=torch.int64, device=device)


def encode_coords(
    indices: torch.Tensor, spatial_shape: Sequence[int], offset: Sequence[int] | None = None
) -> torch.Tensor:
    """Encode ``(b, *spatial)`` rows as one int64 key each, row-major over ``(batch, *spatial_shape)``.

    Args:
        indices: ``[N, 1 + D]`` integer tensor; ``spatial + offset`` must lie inside ``spatial_shape``.
        spatial_shape: the ``D`` spatial extents of the (possibly padded) grid.
        offset: added to the spatial coordinates first (the padding of a padded grid), default 0.

    Returns:
        ``[N]`` int64 keys; sorting them sorts the rows lexicographically by ``(b, z, y, x)``.
    """
    strides = linear_strides([1, *spatial_shape])  # the batch stride is prod(spatial_shape)
    weights = device_constant(tuple(strides), indices.device)
    keys = (indices.long() * weights).sum(dim=1)
    if offset is not None:
        keys += sum(o * s for o, s in zip(offset, strides[1:]))
    return keys


def decode_coords(keys: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`encode_coords`: ``[N]`` int64 keys to ``[N, 1 + D]`` int32 indices."""
    columns = []
    rest = keys
    for extent in reversed(spatial_shape):
        columns.append(rest % extent)
        rest = torch.div(rest, extent, rounding_mode="floor")
    columns.append(rest)
    return torch.stack(columns[::-1], dim=1).int()
