"""Inference through captured CUDA graphs: the whole sparse network replays as one launch.

A sparse network's host work (hundreds of kernel launches, Python between them) costs more than its
GPU time at LiDAR sizes. A CUDA graph removes it, but needs fixed shapes; padded execution
(``sparse_ops.kmap.capacity``) gives them: inputs are padded to a size bucket, and each strided
kernel map gets a fixed output capacity, learned from the first frame of the bucket with headroom.
Kernel maps are still built for every frame, inside the graph.

One graph is captured per ``(bucket, batch size, dtype, channels)``. When a frame has more strided
outputs than a capacity (read back after the replay, one sync), the graph is recaptured with larger
capacities and the frame is run again, so results are always exact.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.tensor import _validate

SparseForward = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph
    features: torch.Tensor  # [capacity, C] static input
    indices: torch.Tensor  # [capacity, 1 + D] static input, -1 rows = padding
    output: torch.Tensor  # static output
    capacities: tuple[int, ...]
    counts: torch.Tensor  # [maps] exact strided-output counts of the last replay


class CudaGraphRunner:
    """Run ``forward(features, indices, batch_size) -> Tensor`` through CUDA graphs (inference only).

    Args:
        forward: a sparse network taking ``[N, C]`` features and ``[N, 1 + D]`` int32 indices
            (e.g. ``SparseEncoder.forward``); its output shape must depend only on the batch size.
            It must run the same layers for every input.
        spatial_shape: the network's input grid, to validate inputs before they enter the graph.
        margin: headroom over the learned strided-output counts (1.3 = 30 %).
        bucket_bits: inputs are padded to a multiple of ``2**(floor(log2 N) - bucket_bits)`` rows,
            i.e. at most ``100 / 2**bucket_bits`` % padding; fewer bits mean fewer graphs.
        max_graphs: graphs kept at once (each holds its own memory pool); the least recently used
            one is dropped beyond that.

    Returns of a call: a new tensor (the graph's output buffer is copied out).
    """

    def __init__(
        self,
        forward: SparseForward,
        spatial_shape: Sequence[int],
        margin: float = 1.3,
        bucket_bits: int = 3,
        max_graphs: int = 8,
    ) -> None:
        if margin < 1.0:
            raise ValueError(f"margin must be >= 1, got {margin}")
        self.forward = forward
        self.spatial_shape = tuple(int(s) for s in spatial_shape)
        self.margin = margin
        self.bucket_bits = bucket_bits
        self.max_graphs = max_graphs
        self.captures: OrderedDict[tuple, _Captured] = OrderedDict()  # least recently used first
        self.num_captures = 0  # graphs captured so far (recaptures after an overflow included)

    def bucket(self, num_rows: int) -> int:
        """The padded row count for ``num_rows`` inputs (a multiple of 256)."""
        step = max(256, 2 ** max(0, int(math.log2(max(num_rows, 1))) - self.bucket_bits))
        return max(step, -(-num_rows // step) * step)

    def __call__(self, features: torch.Tensor, indices: torch.Tensor, batch_size: int) -> torch.Tensor:
        if not features.is_cuda:
            raise ValueError(f"CUDA graphs need CUDA tensors, got features on {features.device}")
        if torch.is_grad_enabled():
            raise RuntimeError("CudaGraphRunner is for inference: call it under torch.no_grad() / inference_mode()")
        _validate(features, indices, self.spatial_shape, batch_size)
        num_rows = features.shape[0]
        key = (self.bucket(num_rows), batch_size, features.dtype, features.shape[1])
        captured = self.captures.get(key)
        if captured is None:
            captured = self.captures[key] = self._capture(key, features, indices, None)
            while len(self.captures) > self.max_graphs:
                self.captures.popitem(last=False)
        self.captures.move_to_end(key)
        while True:
            self._load(captured, features, indices)
            captured.graph.replay()
            counts = captured.counts.tolist()  # the one sync: did every strided output fit?
            if all(count <= capacity for count, capacity in zip(counts, captured.capacities)):
                return captured.output.clone()
            # Maps after an overflowing one saw truncated inputs, so this can take a few rounds.
            needed = [max(c, self._with_margin(n)) for c, n in zip(captured.capacities, counts)]
            captured = self.captures[key] = self._capture(key, features, indices, needed)

    def _with_margin(self, count: int) -> int:
        return max(256, -(-int(count * self.margin) // 256) * 256)

    @staticmethod
    def _load(captured: _Captured, features: torch.Tensor, indices: torch.Tensor) -> None:
        num_rows = features.shape[0]
        captured.features[:num_rows].copy_(features)
        captured.indices[:num_rows].copy_(indices)
        captured.indices[num_rows:].fill_(-1)

    def _capture(
        self, key: tuple, features: torch.Tensor, indices: torch.Tensor, capacities: list[int] | None
    ) -> _Captured:
        bucket, batch_size = key[0], key[1]
        static_features = features.new_zeros((bucket, features.shape[1]))
        static_indices = torch.full((bucket, indices.shape[1]), -1, dtype=torch.int32, device=features.device)
        static_features[: features.shape[0]].copy_(features)
        static_indices[: indices.shape[0]].copy_(indices)
        if capacities is None:  # learn the strided-output counts of this bucket from this frame
            with padded_execution(CapacityPlan()) as learning:
                self.forward(static_features, static_indices, batch_size)
            capacities = [self._with_margin(int(count)) for count in learning.counts]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), padded_execution(CapacityPlan(capacities)):
            self.forward(static_features, static_indices, batch_size)  # warm-up: compiles, allocates
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()  # a private memory pool: graphs sharing one could overwrite each other's outputs
        with torch.cuda.graph(graph), padded_execution(CapacityPlan(capacities)) as plan:
            output = self.forward(static_features, static_indices, batch_size)
            counts = torch.stack(plan.counts) if plan.counts else static_features.new_zeros(0, dtype=torch.int64)
        self.num_captures += 1
        return _Captured(graph, static_features, static_indices, output, tuple(capacities), counts)
