"""Implicit-GEMM layouts of a kernel map: the dense ``[rows, K]`` neighbour table and its tiling.

Implicit GEMM walks output rows: row ``o`` multiplies ``features[nbr[o, k]] @ W_k`` for every
offset ``k`` with ``nbr[o, k] >= 0``. Sorting rows by their offset bitmask groups rows with the same
neighbourhood into a tile, so a tile can skip the offsets none of its rows uses (TorchSparse++'s
sorted dataflow with mask splitting).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sparse_ops.kmap.kernel_map import KernelMap

# Offsets that fit in one int64 bitmask; larger kernels run without tile masks.
MAX_MASKED_OFFSETS = 63


@dataclass(frozen=True, eq=False)
class NeighborMap:
    """``nbr[r, k]``: the source row feeding target row ``r`` through offset ``k``, or -1.

    Attributes:
        nbr: ``[N_rows, K]`` int32.
        derived: the bitmask and tilings, computed on first use (only the sorted dataflow needs them).
    """

    nbr: torch.Tensor
    derived: dict = field(default_factory=dict, repr=False)

    @property
    def num_rows(self) -> int:
        return int(self.nbr.shape[0])

    @property
    def bitmask(self) -> torch.Tensor | None:
        """``[N_rows]`` int64, bit ``k`` set where ``nbr[:, k] >= 0`` (None if K > 63)."""
        if "bitmask" not in self.derived:
            masked = self.nbr.shape[1] <= MAX_MASKED_OFFSETS
            self.derived["bitmask"] = _pack_bits(self.nbr >= 0) if masked else None
        return self.derived["bitmask"]

    def sorted_tiles(self, block_m: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows sorted by bitmask and the OR of the bitmasks of every ``block_m`` consecutive sorted rows.

        Returns:
            ``[N_rows]`` int32 row order and ``[ceil(N_rows / block_m)]`` int64 tile masks.
        """
        if self.bitmask is None:
            raise ValueError(f"tile masks need at most {MAX_MASKED_OFFSETS} kernel offsets, got {self.nbr.shape[1]}")
        key = ("tiles", block_m)
        if key not in self.derived:
            order = torch.argsort(self.bitmask, descending=True, stable=True)
            num_tiles = -(-self.num_rows // block_m)
            present = torch.zeros((num_tiles * block_m, self.nbr.shape[1]), dtype=torch.bool, device=self.nbr.device)
            present[: self.num_rows] = self.nbr[order] >= 0
            used = present.view(num_tiles, block_m, -1).any(dim=1)  # [tiles, K]
            self.derived[key] = (order.int(), _pack_bits(used))
        return self.derived[key]


def _pack_bits(flags: torch.Tensor) -> torch.Tensor:
    """``[N, K]`` bools -> ``[N]`` int64 with bit ``k`` set where ``flags[:, k]``."""
    weights = torch.ones(flags.shape[1], dtype=torch.int64, device=flags.device) << torch.arange(
        flags.shape[1], device=flags.device
    )
    return (flags.long() * weights).sum(dim=1)


def neighbor_map(kmap: KernelMap, direction: str) -> NeighborMap:
    """The output-major map (``"forward"``) or the input-major one (``"backward"``, for the input
    gradient) of ``kmap``, cached on it and built on first use."""
    key = f"neighbor_map_{direction}"
    if key not in kmap.derived:
        tables = kmap.tables
        kmap.derived[key] = NeighborMap(tables.forward if direction == "forward" else tables.backward)
    return kmap.derived[key]
