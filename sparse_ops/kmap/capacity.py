"""Padded execution: fixed output sizes for strided kernel maps, so a whole network has static shapes.

CUDA graphs replay a fixed sequence of kernels on fixed-size buffers, but a strided convolution's
output count depends on the data. While a :class:`CapacityPlan` is active:

* tensors may carry *padding rows*, whose batch index is -1: they are never anyone's neighbour, and
  ``SparseTensor.dense`` drops them;
* a strided kernel map numbers its outputs into a fixed ``capacity`` (from the plan) instead of
  syncing on the exact count; rows past the count are padding rows. The exact counts stay on the
  device, recorded in the plan, so the caller can check that no capacity overflowed.

``sparse_ops.graphs.CudaGraphRunner`` uses it; nothing else needs to.
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

    def next_capacity(self) -> int | None:
        """The capacity of the next strided map (None: size it exactly)."""
        if self.capacities is None:
            return None
        index = len(self.counts)
        if index >= len(self.capacities):
            raise RuntimeError(
                f"the network built more strided kernel maps ({index + 1}) than the plan has capacities "
                f"({len(self.capacities)}); it must run the same layers every time to be padded"
            )
        return self.capacities[index]

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
