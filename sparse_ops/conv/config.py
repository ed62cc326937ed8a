"""How one convolution runs: the dataflow and its tile configuration, as a value."""

from __future__ import annotations

from dataclasses import dataclass

DATAFLOWS = ("gather_scatter", "implicit_gemm", "implicit_gemm_sorted")


@dataclass(frozen=True)
class ConvConfig:
    """A dataflow and its Triton tile sizes (ignored by ``gather_scatter``).

    Attributes:
        dataflow: ``gather_scatter`` (torch ops, any device), ``implicit_gemm`` (Triton, rows in
            order) or ``implicit_gemm_sorted`` (Triton, rows sorted by neighbour bitmask, tiles skip
            offsets none of their rows needs).
        block_m: output rows per tile; block_n: output channels per tile; block_k: input channels
            per inner step.
        num_warps / num_stages: Triton launch parameters.
        wgrad_row_blocks: ``block_m``-row blocks one weight-gradient program reduces before its
            atomic add (fewer atomics vs more parallelism).
    """

    dataflow: str = "gather_scatter"
    block_m: int = 64
    block_n: int = 32
    block_k: int = 32
    num_warps: int = 4
    num_stages: int = 2
    wgrad_row_blocks: int = 8

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {self.dataflow!r}")
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16 (tl.dot), got {value}")


GATHER_SCATTER = ConvConfig()
# Measured faster than the sorted variant on the SECOND encoder (H200, docs/benchmarks.md) until tuned.
IMPLICIT_GEMM_DEFAULT = ConvConfig("implicit_gemm")
