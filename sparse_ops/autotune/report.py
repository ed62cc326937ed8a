"""What a tuning run chose, per layer group, and how it got there (timed, or read from the cache)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sparse_ops.conv.config import ConvConfig


def describe(config: ConvConfig | None, mode: str = "inference") -> str:
    """``implicit_gemm_sorted 64x32x32 w4 s2`` (``k3`` for a split K, ``r8`` row blocks in training); ``-`` for
    None."""
    if config is None:
        return "-"
    if config.dataflow == "gather_scatter":
        return config.dataflow
    tiles = f"{config.block_m}x{config.block_n}x{config.block_k}"
    text = f"{config.dataflow} {tiles} w{config.num_warps} s{config.num_stages}"
    text += f" k{config.split_k}" if config.split_k > 1 else ""
    return f"{text} r{config.wgrad_row_blocks}" if mode == "training" else text


@dataclass(frozen=True)
class GroupResult:
    """The choice for one group of layers sharing a kernel map.

    Attributes:
        layers: qualified module names, in call order.
        signature: geometry and channels (:meth:`LayerGroup.signature`).
        bucket: the map's size bucket (:meth:`LayerGroup.bucket`).
        config: the configuration set on the layers; None if every candidate failed (layers unchanged).
        time_ms: its median milliseconds per group run (from the cache on a hit).
        default_config: what the layers run untuned (``sparse_ops.conv.default_config``).
        default_ms: the default's time, None if it failed.
        cached: the choice was read from the cache, nothing was timed.
        num_timed: configurations timed for this group (0 on a cache hit), each once, the untuned
            default and failed ones included.
        num_failed: of those, the ones that raised (did not compile, did not fit): skipped.
    """

    layers: tuple[str, ...]
    signature: str
    bucket: str
    config: ConvConfig | None
    time_ms: float | None
    default_config: ConvConfig
    default_ms: float | None
    cached: bool
    num_timed: int
    num_failed: int = 0

    @property
    def speedup(self) -> float | None:
        """Default time over tuned time (1.0: the default was already the fastest)."""
        if self.time_ms is None or self.default_ms is None or self.time_ms <= 0:
            return None
        return self.default_ms / self.time_ms


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@dataclass(frozen=True)
class TuningReport:
    """The outcome of :func:`sparse_ops.tune`: one :class:`GroupResult` per layer group.

    Attributes:
        mode: ``inference`` or ``training``.
        device: the device name the timings belong to.
        dtype: the compute dtype key (``float16``, ``float32+tf32``, ...).
        groups: per group, in the order the model first runs them.
        cache_path: the cache file read and written (None: no disk cache).
    """

    mode: str
    device: str
    dtype: str
    groups: tuple[GroupResult, ...]
    cache_path: Path | None

    @property
    def num_timed(self) -> int:
        """Configurations timed in this run, over all groups (0 when every choice came from the cache)."""
        return sum(group.num_timed for group in self.groups)

    @property
    def cached_layers(self) -> list[str]:
        """Layers whose configuration was read from the cache."""
        return [name for group in self.groups if group.cached for name in group.layers]

    def format(self) -> str:
        """A markdown table, one row per group, under a one-line summary."""
        hits = sum(group.cached for group in self.groups)
        cache = "no disk cache" if self.cache_path is None else f"cache {self.cache_path}"
        lines = [
            f"autotune ({self.mode}, {self.device}, {self.dtype}): {len(self.groups)} groups, "
            f"{self.num_timed} configurations timed, {hits} groups from the cache ({cache})",
            "",
            "| layers | signature | bucket | config | ms | default ms | speed-up | source |",
            "| --- | --- | --- | --- | ---: | ---: | ---: | --- |",
        ]
        for group in self.groups:
            speedup = "-" if group.speedup is None else f"{group.speedup:.2f}x"
            source = "cache" if group.cached else f"timed {group.num_timed}"
            source += f" ({group.num_failed} failed)" if group.num_failed else ""
            cells = [", ".join(group.layers), group.signature, group.bucket, describe(group.config, self.mode)]
            cells += [_ms(group.time_ms), _ms(group.default_ms), speedup, source]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()
