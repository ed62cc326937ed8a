"""Which configurations the autotuner considers for a layer group, and how it searches them.

The full grid (two implicit-GEMM dataflows x tile sizes x launch parameters) has about a hundred
points per group, and on a GPU every point of a new channel count costs a Triton compilation. The
default search therefore descends instead of enumerating: it times each dataflow at its most
default-like tiles, then, for the fastest Triton dataflow, sweeps one tile field at a time
(``block_m``, ``block_n``, ``block_k``, ``num_warps``, ``num_stages``, ``wgrad_row_blocks``, ``split_k``) keeping
the best value of each: about ten timings per group instead of a hundred.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import fields

import torch

from sparse_ops.conv.config import GATHER_SCATTER, ConvConfig, fitted_tile
from sparse_ops.utils import triton_available

TILE_FIELDS = ("block_m", "block_n", "block_k", "num_warps", "num_stages", "wgrad_row_blocks", "split_k")
SEARCHES = ("descent", "exhaustive")
_DEFAULTS = ConvConfig()

# milliseconds of one candidate over a group, or None where the candidate failed (e.g. did not compile)
TimeOf = Callable[[ConvConfig], "float | None"]


def _tile_sizes(channels: int, options: Sequence[int]) -> list[int]:
    """The two largest of ``options`` that do not exceed ``channels`` rounded up to a power of two
    (at least 16: ``tl.dot`` needs it)."""
    cap = fitted_tile(channels, max(options))
    return [size for size in options if size <= cap][-2:]


def candidate_configs(
    in_channels: int, out_channels: int, device: torch.device, dtype: torch.dtype, mode: str = "inference"
) -> list[ConvConfig]:
    """The configurations worth timing for a group whose widest layer is ``in_channels -> out_channels``.

    On CUDA with Triton (fp16 / bf16 / fp32): gather-scatter plus both implicit-GEMM dataflows over
    ``block_m`` {32, 64, 128}, ``block_n`` {16, 32, 64, 128} and ``block_k`` {16, 32} (the two largest that
    the channels fill), ``num_warps`` {2, 4, 8}, ``num_stages`` {2, 3} and, in training (it only
    shapes the weight-gradient kernel), ``wgrad_row_blocks`` {4, 8, 16}, and for the unsorted implicit GEMM
    ``split_k`` {1, 3}. Elsewhere only gather-scatter:
    Triton's CPU interpreter is for correctness, never for speed, and fp64 has no fast ``tl.dot``.
    """
    if device.type != "cuda" or dtype == torch.float64 or not triton_available():
        return [GATHER_SCATTER]
    row_blocks = (4, 8, 16) if mode == "training" else (_DEFAULTS.wgrad_row_blocks,)
    grid = itertools.product(
        ("implicit_gemm", "implicit_gemm_sorted"),
        (32, 64, 128),
        _tile_sizes(out_channels, (16, 32, 64, 128)),
        _tile_sizes(in_channels, (16, 32)),
        (2, 4, 8),
        (2, 3),
        row_blocks,
        (1, 3),
    )
    tiled = [ConvConfig(*values) for values in grid if values[-1] == 1 or values[0] == "implicit_gemm"]
    return [GATHER_SCATTER, *tiled]


def _distance_to_default(config: ConvConfig) -> int:
    return sum(getattr(config, name) != getattr(_DEFAULTS, name) for name in TILE_FIELDS)


def _differs_only_in(a: ConvConfig, b: ConvConfig, name: str) -> bool:
    return all(getattr(a, f.name) == getattr(b, f.name) for f in fields(ConvConfig) if f.name != name)


def _fastest(configs: Sequence[ConvConfig], time_of: TimeOf) -> ConvConfig | None:
    timed = [(ms, i, config) for i, config in enumerate(configs) if (ms := time_of(config)) is not None]
    return min(timed)[2] if timed else None


def descend(candidates: Sequence[ConvConfig], time_of: TimeOf) -> ConvConfig | None:
    """Each dataflow at its most default-like tiles, then one coordinate-descent pass over the tile
    fields of the fastest; ``time_of`` should memoise (a config may be asked for twice).

    Returns:
        The fastest configuration found, or None if every candidate failed.
    """
    dataflows = list(dict.fromkeys(config.dataflow for config in candidates))
    starts = [min((c for c in candidates if c.dataflow == flow), key=_distance_to_default) for flow in dataflows]
    best = _fastest(starts, time_of)
    if best is None or best.dataflow == "gather_scatter":  # gather-scatter has no tiles to sweep
        return best
    for name in TILE_FIELDS:
        neighbours = [c for c in candidates if c != best and _differs_only_in(c, best, name)]
        best = _fastest([best, *neighbours], time_of)
    return best


def search(candidates: Sequence[ConvConfig], time_of: TimeOf, strategy: str = "descent") -> ConvConfig | None:
    """The fastest of ``candidates`` by ``descent`` (:func:`descend`) or ``exhaustive`` timing.

    Raises:
        ValueError: for an unknown strategy or an empty candidate list.
    """
    if strategy not in SEARCHES:
        raise ValueError(f"search must be one of {SEARCHES}, got {strategy!r}")
    if not candidates:
        raise ValueError("the autotuner needs at least one candidate configuration")
    if strategy == "exhaustive":
        return _fastest(candidates, time_of)
    return descend(candidates, time_of)
