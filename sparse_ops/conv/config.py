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
        split_k: ``implicit_gemm`` only: each tile's (offset, channel-block) steps are split over this many
            programs, whose fp32 partial sums are added afterwards (more programs for layers with few rows and
            many input channels; 1 = no split).
    """

    dataflow: str = "gather_scatter"
    block_m: int = 64
    block_n: int = 32
    block_k: int = 32
    num_warps: int = 4
    num_stages: int = 2
    wgrad_row_blocks: int = 8
    split_k: int = 1

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {DATAFLOWS}, got {self.dataflow!r}")
        if self.split_k < 1 or (self.split_k > 1 and self.dataflow != "implicit_gemm"):
            raise ValueError(f"split_k must be >= 1, and 1 for dataflow {self.dataflow!r}; got {self.split_k}")
        for name in ("block_m", "block_n", "block_k"):
            value = getattr(self, name)
            if value < 16 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two >= 16 (tl.dot), got {value}")


GATHER_SCATTER = ConvConfig()


def fitted_tile(channels: int, cap: int) -> int:
    """The power of two >= ``channels`` (at least 16, ``tl.dot``'s minimum), at most ``cap``."""
    return min(cap, max(16, 1 << max(channels - 1, 0).bit_length()))


def implicit_gemm_default(in_channels: int, out_channels: int) -> ConvConfig:
    """The untuned implicit-GEMM tiles for a layer: 64 rows, ``block_k`` the input width up to 32 and ``block_n``
    the output width up to 64, so no tile multiplies padding channels. On the SECOND encoder (H100, fp16, batch 8)
    the autotuner chose exactly these tiles for 5 of its 8 layer groups and differed in one or two fields (rows,
    stages) on the others; the former fixed 64 x 32 x 32 tiles were up to 1.7x slower than its choices."""
    return ConvConfig(
        "implicit_gemm", block_m=64, block_n=fitted_tile(out_channels, 64), block_k=fitted_tile(in_channels, 32)
    )
