"""Training through CUDA graphs: a sparse network's forward replays as one graph, its backward as another.

Small LiDAR inputs keep the GPU waiting on the host: a training step of the SECOND encoder launches ~1000
kernels from Python and autograd. :class:`CudaGraphTrainer` captures the forward (kernel-map building
included) and the backward of a module in padded execution, like :class:`~sparse_ops.graphs.CudaGraphRunner`
does for inference, and hands the result to autograd as one operation: the caller computes its loss
eagerly on the output, calls ``backward()``, and the parameters' ``.grad`` fill as after an eager step.

Padding rows stay out of the arithmetic: they are nobody's neighbour, ``SparseTensor.dense`` cuts them
off, and BatchNorm in ``SparseSequential`` / :func:`~sparse_ops.nn.apply_to_features` takes its batch
statistics over the real rows only (:func:`~sparse_ops.nn.masked_batch_norm`). So a replayed step has the
outputs, gradients and running statistics of an eager step. The capture runs the network three times (learning
the capacities, warming up, recording); the module's buffers (BatchNorm's running statistics) are put back
after them, and every replay first saves them, so a step that overflows a capacity is undone before it is
recaptured and run again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from sparse_ops.graphs import CudaGraphRunner, Output, _map_tensors


@dataclass
class _TrainingCapture:
    forward_graph: torch.cuda.CUDAGraph | None  # None: padded execution runs eagerly (capture=False)
    backward_graph: torch.cuda.CUDAGraph | None
    inputs: tuple[torch.Tensor, ...]  # static inputs (features, indices, *extras), padded to the bucket
    output: Output  # static output
    outputs: tuple[torch.Tensor, ...]  # its floating-point tensors, in _flatten order
    grad_outputs: tuple[torch.Tensor, ...]  # static gradients of ``outputs`` (the backward graph's input)
    grads: tuple[torch.Tensor | None, ...]  # static gradients of the parameters (+ the features), None if unused
    capacities: tuple[int, ...]
    counts: torch.Tensor  # [capacities] exact data-dependent output counts of the last forward replay
    saved_buffers: list[torch.Tensor]  # the module's buffers as the last forward replay found them


class CudaGraphTrainer(CudaGraphRunner):
    """Run a sparse module's training forward and backward through CUDA graphs.

    ``out = trainer(features, indices, batch_size, *extras)`` returns what ``module(features, indices,
    batch_size, *extras)`` returns, attached to autograd; ``loss(out).backward()`` then replays the backward
    graph and accumulates into ``.grad`` of the module's parameters (and of ``features`` if it requires grad).
    Call it in train mode with grad enabled; an optimiser step runs eagerly after the backward, as usual. One
    forward / backward graph pair is kept per ``(bucket, batch size, dtypes, trailing shapes)``.

    Args:
        module: the network (e.g. ``SparseEncoder``): its forward must run the same layers for every input
            and return a tensor or a tuple / list / dict of tensors of bucket-fixed shapes. Its norms must
            be BatchNorms applied through ``SparseSequential`` or ``apply_to_features`` (a plain
            ``bn(x.features)`` would count the padding rows).
        spatial_shape, margin, bucket_bits, max_graphs, capture: as for ``CudaGraphRunner``;
            ``capture=False`` runs the same padded training eagerly (any device: for tests and comparisons).
        copy_outputs: True returns the output copied out of the graph. False returns the graph's own buffer:
            it must be consumed (its backward run) before the next call of the same bucket overwrites it.

    Raises:
        RuntimeError: when called with grad disabled (use ``CudaGraphRunner`` for inference).
    """

    def __init__(
        self,
        module: nn.Module,
        spatial_shape: Sequence[int],
        margin: float = 1.1,
        bucket_bits: int = 3,
        max_graphs: int = 8,
        capture: bool = True,
        copy_outputs: bool = True,
    ) -> None:
        super().__init__(module.forward, spatial_shape, margin, bucket_bits, max_graphs, capture, copy_outputs)
        self.module = module

    def __call__(self, features: torch.Tensor, indices: torch.Tensor, batch_size: int, *extras: torch.Tensor) -> Output:
        if self.capture and not features.is_cuda:
            raise ValueError(f"CUDA graphs need CUDA tensors, got features on {features.device}")
        if not torch.is_grad_enabled():
            raise RuntimeError("CudaGraphTrainer is for training (grad enabled): use CudaGraphRunner for inference")
        inputs = (features, indices, *extras)
        self._check(inputs, batch_size)
        trainable = tuple(p.requires_grad for p in self.module.parameters())  # freezing changes the backward
        key = (*self._key(inputs, batch_size), trainable, features.requires_grad)
        captured = self._captured(key, inputs)
        buffers = list(self.module.buffers())
        while True:
            if captured.forward_graph is None:
                _copy_all(captured.saved_buffers, buffers)
                captured.output, captured.counts = self._run(self._padded(key, inputs), batch_size, captured.capacities)
            else:
                self._load(captured, inputs)
                captured.forward_graph.replay()  # saves the buffers first, then runs the forward
            counts = captured.counts.tolist()  # the one sync: did every data-dependent output fit?
            if all(count <= capacity for count, capacity in zip(counts, captured.capacities)):
                break
            _copy_all(buffers, captured.saved_buffers)  # undo the overflowing step's running statistics
            captured = self.captures[key] = self._capture(key, inputs, captured.capacities)
        if captured.forward_graph is None:
            return captured.output
        targets = (*self._parameters(), *((features,) if features.requires_grad else ()))
        outputs = _ReplayedStep.apply(captured, features.shape[0], self.copy_outputs, *targets)
        iterator = iter(outputs)
        return _map_tensors(lambda t: next(iterator) if t.is_floating_point() else t, captured.output)

    def _parameters(self) -> tuple[nn.Parameter, ...]:
        return tuple(p for p in self.module.parameters() if p.requires_grad)

    @staticmethod
    def _padded(key: tuple, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """``inputs`` padded to the key's bucket, differentiably (the eager path of ``capture=False``)."""
        rows = key[0] - inputs[0].shape[0]
        features, indices, *extras = inputs
        return (
            torch.cat([features, features.new_zeros((rows, *features.shape[1:]))]),
            torch.cat([indices, indices.new_full((rows, *indices.shape[1:]), -1)]),
            *(torch.cat([t, t.new_zeros((rows, *t.shape[1:]))]) for t in extras),
        )

    def _capture(self, key: tuple, inputs: tuple[torch.Tensor, ...], floor: Sequence[int] = ()) -> _TrainingCapture:
        """Learn the capacities from ``inputs`` (at least ``floor``), then record the forward and backward graphs;
        the module's buffers end as they were."""
        batch_size, needs_input_grad = key[1], key[-1]
        buffers = list(self.module.buffers())
        before = [b.clone() for b in buffers]
        static = self._static_copy(key, inputs)
        capacities = tuple(self._learn_capacities(static, batch_size, floor))
        _copy_all(buffers, before)
        if not self.capture:
            empty = static[0].new_zeros(0, dtype=torch.int64)
            return _TrainingCapture(None, None, static, None, (), (), (), capacities, empty, before)
        targets = self._parameters()
        if needs_input_grad:
            targets += (static[0].requires_grad_(True),)
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up: compiles, allocates, builds autograd's graph once
            output, _ = self._run(static, batch_size, capacities)
            outputs = _flatten(output)
            torch.autograd.grad(outputs, targets, [torch.ones_like(o) for o in outputs], allow_unused=True)
        torch.cuda.current_stream().wait_stream(stream)
        _copy_all(buffers, before)
        forward_graph, backward_graph = torch.cuda.CUDAGraph(), torch.cuda.CUDAGraph()
        with torch.cuda.graph(forward_graph):
            _copy_all(before, buffers)  # each replay first saves the buffers into ``before``
            output, counts = self._run(static, batch_size, capacities)
        outputs = _flatten(output)
        grad_outputs = tuple(torch.empty_like(o) for o in outputs)
        with torch.cuda.graph(backward_graph, pool=forward_graph.pool()):
            grads = torch.autograd.grad(outputs, targets, grad_outputs, allow_unused=True)
        output = _map_tensors(torch.Tensor.detach, output)  # keep no autograd node of the capture alive
        return _TrainingCapture(
            forward_graph, backward_graph, static, output, tuple(o.detach() for o in outputs), grad_outputs,
            grads, capacities, counts, before,
        )  # fmt: skip


class _ReplayedStep(torch.autograd.Function):
    """The forward graph's outputs (already replayed) as one autograd node whose backward replays the backward
    graph; inputs ``(capture, rows, copy, *targets)``, ``targets`` being the parameters (+ the features)."""

    @staticmethod
    def forward(ctx, captured: _TrainingCapture, rows: int, copy: bool, *targets: torch.Tensor):
        ctx.captured, ctx.rows = captured, rows
        return tuple(o.clone() if copy else o.detach() for o in captured.outputs)

    @staticmethod
    def backward(ctx, *grad_outputs: torch.Tensor | None):
        captured = ctx.captured
        for static, grad in zip(captured.grad_outputs, grad_outputs):
            if grad is None:
                static.zero_()
            else:
                static.copy_(grad)
        captured.backward_graph.replay()
        # Copies: autograd may keep a returned tensor as .grad, and the next replay overwrites the static ones.
        grads = [None if g is None else g.clone() for g in captured.grads]
        if captured.inputs[0].requires_grad and grads[-1] is not None:
            grads[-1] = grads[-1][: ctx.rows]  # the features' gradient: the real rows, not the bucket's padding
        return (None, None, None, *grads)


def _flatten(output: Output) -> tuple[torch.Tensor, ...]:
    """The floating-point tensors of ``output`` (through tuples, lists and dicts), in traversal order."""
    found: list[torch.Tensor] = []

    def visit(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            found.append(t)
        return t

    _map_tensors(visit, output)
    if not found:
        raise TypeError(f"the network's output has no floating-point tensor to train through: {type(output)}")
    return tuple(found)


def _copy_all(destinations: list[torch.Tensor], sources: list[torch.Tensor]) -> None:
    """``destinations[i].copy_(sources[i])`` for all i, in one multi-tensor launch."""
    if destinations:
        torch._foreach_copy_(destinations, sources)
