"""The kernel-map cache a family of sparse tensors shares, keyed by ``indice_key`` (spconv semantics)."""

from __future__ import annotations

import torch

from sparse_ops.kmap.geometry import ConvGeometry
from sparse_ops.kmap.kernel_map import KernelMap, build_kernel_map


def _same_sites(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a is b or (a.shape == b.shape and a.device == b.device and bool(torch.equal(a, b)))


class KernelMapCache:
    """Kernel maps by ``indice_key``, with loud checks when a key is reused.

    A convolution with an ``indice_key`` stores its map here; a later convolution with the same key
    reuses it (a submanifold conv on the same sites) or inverts it (an inverse conv). Reusing a key
    for a different geometry or different sites raises instead of silently computing garbage.
    Tensors derived from one another (``replace_feature``, conv outputs) share one cache; a tensor
    built from new indices starts with an empty one.
    """

    def __init__(self) -> None:
        self._maps: dict[str, KernelMap] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._maps

    def keys(self) -> list[str]:
        return list(self._maps)

    def lookup(
        self, key: str, geometry: ConvGeometry, indices: torch.Tensor, spatial_shape: tuple[int, ...]
    ) -> KernelMap | None:
        """The map stored under ``key`` if there is one, after checking it fits this convolution.

        Raises:
            ValueError: if ``key`` holds a map of another geometry or built for other input sites.
        """
        kmap = self._maps.get(key)
        if kmap is None:
            return None
        if kmap.geometry != geometry:
            raise ValueError(
                f"indice_key {key!r} holds a kernel map for {kmap.geometry}, but is reused by a convolution with "
                f"{geometry}; give layers of different geometry different indice_keys"
            )
        if kmap.in_spatial_shape != spatial_shape or not _same_sites(kmap.in_indices, indices):
            raise ValueError(
                f"indice_key {key!r} holds a kernel map built for {kmap.num_in} sites in grid {kmap.in_spatial_shape}, "
                f"but is reused on {indices.shape[0]} different sites in grid {spatial_shape}; "
                "layers sharing a key must see the same sites"
            )
        return kmap

    def lookup_inverse(self, key: str, kernel_size: tuple[int, ...], indices: torch.Tensor) -> KernelMap:
        """The transposed map of the strided convolution stored under ``key``, for an inverse conv.

        Raises:
            KeyError: if no convolution stored a map under ``key``.
            ValueError: if that map is submanifold, has another kernel size, or its outputs are not ``indices``.
        """
        kmap = self._maps.get(key)
        if kmap is None:
            known = ", ".join(repr(k) for k in self._maps) or "none"
            raise KeyError(
                f"inverse convolution with indice_key {key!r}: no convolution stored a kernel map under that key "
                f"(keys present: {known}); give the strided convolution it inverts the same indice_key"
            )
        if kmap.geometry.subm or kmap.transposed:
            raise ValueError(
                f"indice_key {key!r} belongs to a submanifold or inverse conv, which an inverse conv cannot invert"
            )
        if kmap.geometry.kernel_size != kernel_size:
            raise ValueError(
                f"inverse convolution with kernel {kernel_size} cannot invert the conv under indice_key {key!r}, "
                f"whose kernel is {kmap.geometry.kernel_size}"
            )
        if not _same_sites(kmap.out_indices, indices):
            raise ValueError(
                f"inverse convolution with indice_key {key!r} got {indices.shape[0]} sites, but the conv it inverts "
                f"produced {kmap.num_out} different ones"
            )
        return kmap.transpose()

    def get_or_build(
        self,
        key: str | None,
        indices: torch.Tensor,
        spatial_shape: tuple[int, ...],
        geometry: ConvGeometry,
        batch_size: int | None = None,
    ) -> KernelMap:
        """The map under ``key`` (checked as in :meth:`lookup`), else a new one (``batch_size``: see
        :func:`build_kernel_map`), stored when ``key`` is set."""
        kmap = None if key is None else self.lookup(key, geometry, indices, spatial_shape)
        if kmap is None:
            kmap = build_kernel_map(indices, spatial_shape, geometry, batch_size=batch_size)
            if key is not None:
                self._maps[key] = kmap
        return kmap
