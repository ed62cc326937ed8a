"""Padded execution: fixed output sizes for strided kernel maps, so a whole network has static shapes.

CUDA graphs replay a fixed sequence of kernels on fixed-size buffers, but a strided convolution's
output count depends on the data. While a :class:`CapacityPlan` is active:

* tensors may carry *padding rows*, whose batch index is -1: they are never anyone's neighbour, and
  ``SparseTensor.dense`` drops them;
* a strided kernel map numbers its outputs into a fixed ``capacity`` (from the plan) instead of
  syncing on the exact count; rows past the count are padding rows. The exact counts stay on the
  device, recorded in the plan, so the caller can check that no capacity overflowed.
* any other operation whose output row count depends on the data (e.g. dropping sites) does the
  same: it takes ``plan.next_capacity()``, writes its rows into that many (:func:`compact_rows`,
  :func:`scatter_rows`) and records its exact count with ``plan.record``.

``sparse_ops.graphs.CudaGraphRunner`` sets up padded execution; networks only consume the plan.
In training, BatchNorm applied through ``SparseSequential`` / ``sparse_ops.nn.apply_to_features`` takes its
batch statistics over the real rows only, so padded training equals unpadded training
(``sparse_ops.graph_training.CudaGraphTrainer``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch


class CapacityPlan:
    """The output capacity of each strided map built while active, in build order.

    Args:
        capacities: one row count per strided map, or None to size every map exactly (one device
            sync each) and just record the counts, as a first run does to learn them.
    """

    def __init__(self, capacities: Sequence[int] | None = None) -> None:
        self.capacities = None if capacities is None else tuple(int(c) for c in capacities)
        self.counts: list[torch.Tensor] = []  # 0-d device tensors, the exact output counts

    def next_capacity(self, bound: int | None = None) -> int | None:
        """The capacity of the next data-dependent output (None: size it exactly).

        Args:
            bound: a static upper bound on that output's count (e.g. its input's row count, which a
                selection of rows cannot exceed): the capacity is capped there, so the output never
                allocates more rows than it can fill (the recorded count is still checked against the
                plan's capacity, which it cannot then exceed).
        """
        if self.capacities is None:
            return None
        index = len(self.counts)
        if index >= len(self.capacities):
            raise RuntimeError(
                f"the network built more strided kernel maps ({index + 1}) than the plan has capacities "
                f"({len(self.capacities)}); it must run the same layers every time to be padded"
            )
        capacity = self.capacities[index]
        return capacity if bound is None else min(capacity, int(bound))

    def record(self, count: torch.Tensor) -> None:
        self.counts.append(count)


_ACTIVE_PLAN: ContextVar[CapacityPlan | None] = ContextVar("sparse_ops_capacity_plan", default=None)


@contextmanager
def padded_execution(plan: CapacityPlan) -> Iterator[CapacityPlan]:
    """Run the enclosed network with padding rows allowed and strided outputs sized by ``plan``."""
    token = _ACTIVE_PLAN.set(plan)
    try:
        yield plan
    finally:
        _ACTIVE_PLAN.reset(token)


def active_plan() -> CapacityPlan | None:
    """The plan of the enclosing :func:`padded_execution`, or None in normal execution."""
    return _ACTIVE_PLAN.get()


def compact_rows(keep: torch.Tensor, capacity: int) -> torch.Tensor:
    """Where each kept row goes when the kept rows are packed, in order, into ``capacity`` rows.

    Args:
        keep: ``[N]`` bool, the rows that survive.
        capacity: rows of the packed output.

    Returns:
        ``[N]`` int64 target rows: ``0, 1, ...`` for the kept rows in their order, ``capacity`` (a spare
        row, see :func:`scatter_rows`) for dropped rows and for kept rows beyond the capacity. No sync.
    """
    target = torch.cumsum(keep, 0) - 1
    return target.where(keep, capacity).clamp_(max=capacity)


def scatter_rows(values: torch.Tensor, target: torch.Tensor, capacity: int, fill: float | int) -> torch.Tensor:
    """``[capacity, *values.shape[1:]]``: row ``target[i]`` holds ``values[i]``, rows nobody writes hold ``fill``;
    writes to row ``capacity`` (see :func:`compact_rows`) are discarded. Differentiable w.r.t. ``values``."""
    out = values.new_full((capacity + 1, *values.shape[1:]), fill)
    return out.index_put((target,), values)[:capacity]
