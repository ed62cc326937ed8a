"""Inference through captured CUDA graphs: a whole network replays as one launch.

A sparse network's host work (hundreds of kernel launches, Python between them) costs more than its
GPU time at LiDAR sizes. A CUDA graph removes it, but needs fixed shapes; padded execution
(``sparse_ops.kmap.capacity``) gives them: inputs are padded to a size bucket, and each data-dependent
output (strided kernel maps, and whatever else consumes the plan, e.g. Ada3D's drops) gets a fixed
capacity, learned from the first frame of the bucket with headroom. Kernel maps are still built for
every frame, inside the graph.

One graph is captured per ``(bucket, batch size, input dtypes and trailing shapes)``. When a frame
has more outputs than a capacity (read back after the replay, one sync), the capacities are relearned
from that frame (never shrinking), the graph is recaptured and the frame is run again, so results are
always exact.

A dense network (fixed input shapes, e.g. a BEV backbone) goes through the same runner without
``indices``: its graph is keyed by the input's shape, so dense and sparse parts are timed alike.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.tensor import _validate

# What a network returns: a tensor, or tuples / lists / dicts of them (other leaves pass through unchanged).
Output = object


@dataclass
class _Captured:
    graph: torch.cuda.CUDAGraph | None  # None: replayed as eager padded execution (capture=False)
    inputs: tuple[torch.Tensor, ...]  # static inputs; for a sparse network (features, indices, *extras)
    output: Output  # static output (of the last run, for capture=False)
    capacities: tuple[int, ...]
    counts: torch.Tensor  # [capacities] exact data-dependent output counts of the last replay


class CudaGraphRunner:
    """Run a network through CUDA graphs (inference only), sparse or dense.

    Sparse: ``runner(features, indices, batch_size, *extras)`` calls
    ``forward(features, indices, batch_size, *extras)`` on the inputs padded to a size bucket: ``features``
    ``[N, ...]`` (e.g. ``[N, C]``, or hard voxels ``[N, P, C]``), ``indices`` ``[N, 1 + D]`` int32 (rows of batch
    -1 are padding, in the input too), ``extras`` further ``[N, ...]`` tensors of the same rows (e.g. points per
    voxel). Dense: ``runner(features)`` calls ``forward(features)`` on a static copy of the input.

    Args:
        forward: the network (e.g. ``SparseEncoder.forward``); it must run the same layers for every input,
            and its output's shapes must depend only on the bucket (padded rows, e.g. a dropped set of sites
            with a fixed capacity, are fine). Its output: a tensor or tuples / lists / dicts of tensors.
        spatial_shape: the sparse input grid, to validate indices before they enter the graph; None for a
            dense network.
        margin: headroom over the learned data-dependent output counts (1.1 = 10 %). Capacities never shrink,
            so a stream settles at its largest frames; each overflow costs one recapture. More headroom costs
            padded work and memory on every frame (H100, fp16, 1.18M-voxel batch: 1.3 took 38.4 ms and 2544 MB
            at peak, 1.1 35.3 ms and 2253 MB).
        bucket_bits: inputs are padded to a multiple of ``2**(floor(log2 N) - bucket_bits)`` rows,
            i.e. at most ``100 / 2**bucket_bits`` % padding; fewer bits mean fewer graphs.
        max_graphs: graphs kept at once (each holds its own memory pool); the least recently used
            one is dropped beyond that.
        capture: False runs exactly the same padded execution (buckets, learned capacities, recapture
            on overflow) eagerly instead of replaying a graph, on any device: for tests without a GPU, and
            to see what the graphs save.
        copy_outputs: True returns new tensors (the graph's output buffers copied out). False returns the
            graph's own output buffers, as TensorRT returns its bindings: no copy and no second output in
            memory (for SECOND's BEV map, 36 MB in fp32 per sample), but the next call of the same bucket
            overwrites them, so consume (or clone) them first.

    Returns of a call: the network's output. Padding rows of a sparse output (batch -1) stay in it.
    """

    def __init__(
        self,
        forward: Callable[..., Output],
        spatial_shape: Sequence[int] | None = None,
        margin: float = 1.1,
        bucket_bits: int = 3,
        max_graphs: int = 8,
        capture: bool = True,
        copy_outputs: bool = True,
    ) -> None:
        if margin < 1.0:
            raise ValueError(f"margin must be >= 1, got {margin}")
        self.forward = forward
        self.spatial_shape = None if spatial_shape is None else tuple(int(s) for s in spatial_shape)
        self.margin = margin
        self.bucket_bits = bucket_bits
        self.max_graphs = max_graphs
        self.capture = capture
        self.copy_outputs = copy_outputs
        self.captures: OrderedDict[tuple, _Captured] = OrderedDict()  # least recently used first
        self.num_captures = 0  # graphs (capture=False: capacity plans) made so far, recaptures included

    def bucket(self, num_rows: int) -> int:
        """The padded row count for ``num_rows`` inputs (a multiple of 256)."""
        step = max(256, 2 ** max(0, int(math.log2(max(num_rows, 1))) - self.bucket_bits))
        return max(step, -(-num_rows // step) * step)

    def __call__(
        self,
        features: torch.Tensor,
        indices: torch.Tensor | None = None,
        batch_size: int | None = None,
        *extras: torch.Tensor,
    ) -> Output:
        if self.capture and not features.is_cuda:
            raise ValueError(f"CUDA graphs need CUDA tensors, got features on {features.device}")
        if torch.is_grad_enabled():
            raise RuntimeError("CudaGraphRunner is for inference: call it under torch.no_grad() / inference_mode()")
        inputs = (features,) if indices is None else (features, indices, *extras)
        self._check(inputs, batch_size)
        key = self._key(inputs, batch_size)
        captured = self._captured(key, inputs)
        while True:
            self._load(captured, inputs)
            self._replay(captured, batch_size)
            counts = captured.counts.tolist()  # the one sync: did every data-dependent output fit?
            if all(count <= capacity for count, capacity in zip(counts, captured.capacities)):
                return _map_tensors(torch.Tensor.clone, captured.output) if self.copy_outputs else captured.output
            # Counts after an overflowing output saw truncated inputs: relearn all of them from this frame.
            captured = self.captures[key] = self._capture(key, inputs, captured.capacities)

    def _key(self, inputs: tuple[torch.Tensor, ...], batch_size: int | None) -> tuple:
        """The graph key of ``inputs``: (bucket or dense shape, batch size, dtypes and trailing shapes)."""
        signature = tuple((t.dtype, tuple(t.shape[1:])) for t in inputs)
        if len(inputs) == 1:
            return (tuple(inputs[0].shape), None, signature)
        return (self.bucket(inputs[0].shape[0]), batch_size, signature)

    def _captured(self, key: tuple, inputs: tuple[torch.Tensor, ...]) -> _Captured:
        """The capture for ``key`` (captured from ``inputs`` if new), marked most recently used."""
        captured = self.captures.get(key)
        if captured is None:
            captured = self.captures[key] = self._capture(key, inputs)
            while len(self.captures) > self.max_graphs:
                self.captures.popitem(last=False)
        self.captures.move_to_end(key)
        return captured

    def _check(self, inputs: tuple[torch.Tensor, ...], batch_size: int | None) -> None:
        if len(inputs) == 1:
            if self.spatial_shape is not None or batch_size is not None:
                raise ValueError(
                    "a sparse CudaGraphRunner (spatial_shape given) needs features, indices and batch_size"
                )
            return
        if self.spatial_shape is None:
            raise ValueError("a dense CudaGraphRunner (spatial_shape None) takes one input tensor and no indices")
        features, indices, *extras = inputs
        rows = features.shape[0]
        flat = features.flatten(1) if features.dim() > 2 else features  # e.g. hard voxels [N, P, C]
        _validate(flat, indices, self.spatial_shape, batch_size, padding_rows=True)
        for i, extra in enumerate(extras):
            if extra.shape[0] != rows or extra.device != features.device:
                raise ValueError(
                    f"extra input {i} must have the features' {rows} rows on {features.device}, got shape "
                    f"{tuple(extra.shape)} on {extra.device}"
                )

    def _with_margin(self, count: int) -> int:
        return max(256, -(-int(count * self.margin) // 256) * 256)

    @staticmethod
    def _load(captured: _Captured, inputs: tuple[torch.Tensor, ...]) -> None:
        if len(inputs) == 1:
            captured.inputs[0].copy_(inputs[0])
            return
        num_rows = inputs[0].shape[0]
        for static, given in zip(captured.inputs, inputs):
            static[:num_rows].copy_(given)
        captured.inputs[1][num_rows:].fill_(-1)  # padding rows: batch -1 (their other inputs are never read)

    def _replay(self, captured: _Captured, batch_size: int | None) -> None:
        if captured.graph is not None:
            captured.graph.replay()
            return
        captured.output, captured.counts = self._run(captured.inputs, batch_size, captured.capacities)

    def _run(
        self, inputs: tuple[torch.Tensor, ...], batch_size: int | None, capacities: Sequence[int]
    ) -> tuple[Output, torch.Tensor]:
        """``forward`` in padded execution with ``capacities``: its output and the exact counts ``[capacities]``."""
        with padded_execution(CapacityPlan(capacities)) as plan:
            output = self.forward(*self._arguments(inputs, batch_size))
            counts = torch.stack(plan.counts) if plan.counts else inputs[0].new_zeros(0, dtype=torch.int64)
        return output, counts

    @staticmethod
    def _arguments(inputs: tuple[torch.Tensor, ...], batch_size: int | None) -> tuple:
        if len(inputs) == 1:
            return inputs
        features, indices, *extras = inputs
        return (features, indices, batch_size, *extras)

    def _capture(self, key: tuple, inputs: tuple[torch.Tensor, ...], floor: Sequence[int] = ()) -> _Captured:
        """Capture ``forward`` for ``key`` with capacities learned from ``inputs`` (exact counts with the margin),
        at least ``floor`` (the capacities of the graph this one replaces)."""
        batch_size = key[1]
        static = self._static_copy(key, inputs)
        capacities = self._learn_capacities(static, batch_size, floor)
        if not self.capture:
            output, counts = self._run(static, batch_size, capacities)
            return _Captured(None, static, output, tuple(capacities), counts)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            self._run(static, batch_size, capacities)  # warm-up: compiles, allocates
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()  # a private memory pool: graphs sharing one could overwrite each other's outputs
        with torch.cuda.graph(graph):
            output, counts = self._run(static, batch_size, capacities)
        return _Captured(graph, static, output, tuple(capacities), counts)

    @staticmethod
    def _static_copy(key: tuple, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """Buffers holding ``inputs``: as they are for a dense network, padded to the key's bucket for a sparse one."""
        if len(inputs) == 1:
            return (inputs[0].detach().clone(),)
        bucket, num_rows = key[0], inputs[0].shape[0]
        static = tuple(t.new_zeros((bucket, *t.shape[1:])) for t in inputs)
        static[1].fill_(-1)
        for buffer, given in zip(static, inputs):
            buffer[:num_rows].copy_(given)
        return static

    def _learn_capacities(
        self, static: tuple[torch.Tensor, ...], batch_size: int | None, floor: Sequence[int]
    ) -> list[int]:
        """One exact padded run (no grad, one sync per data-dependent output): its counts with the margin, at
        least ``floor`` (the capacities of the graph a new one replaces). Counts this as a capture."""
        with torch.no_grad(), padded_execution(CapacityPlan()) as learning:
            self.forward(*self._arguments(static, batch_size))
        capacities = [self._with_margin(int(count)) for count in learning.counts]
        if floor:  # the same layers ran, so there are as many capacities as before
            capacities = [max(capacity, smallest) for capacity, smallest in zip(capacities, floor, strict=True)]
        self.num_captures += 1
        return capacities


def _map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], tree: Output) -> Output:
    """``tree`` with ``fn`` applied to every tensor in it (through tuples, lists and dicts)."""
    if isinstance(tree, torch.Tensor):
        return fn(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_map_tensors(fn, item) for item in tree)
    if isinstance(tree, dict):
        return {key: _map_tensors(fn, value) for key, value in tree.items()}
    return tree
