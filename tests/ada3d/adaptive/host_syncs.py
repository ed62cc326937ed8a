"""A guard that fails a test when code syncs with the host: what a CUDA graph cannot capture, caught on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

# Reading a tensor on the host, or ops whose output size depends on the data.
_TENSOR_METHODS = ("item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "nonzero", "unique",
                   "bincount", "masked_select", "argwhere")  # fmt: skip
_TORCH_FUNCTIONS = ("nonzero", "unique", "bincount", "masked_select", "argwhere", "unique_consecutive")


def _has_bool_mask(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in parts)


@contextmanager
def forbid_host_syncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Raise AssertionError on ``Tensor.item / tolist / bool() / int()``, ``nonzero``, ``unique``, ``bincount`` and
    indexing with a boolean mask while active."""

    def forbidden(name: str):
        def raise_sync(*args, **kwargs):
            raise AssertionError(f"host sync inside padded execution: {name}")

        return raise_sync

    getitem, setitem = torch.Tensor.__getitem__, torch.Tensor.__setitem__

    def checked_getitem(self, index):
        if _has_bool_mask(index):
            raise AssertionError("host sync inside padded execution: boolean-mask indexing")
        return getitem(self, index)

    def checked_setitem(self, index, value):
        if _has_bool_mask(index):
            raise AssertionError("host sync inside padded execution: boolean-mask assignment")
        return setitem(self, index, value)

    with monkeypatch.context() as patch:
        for name in _TENSOR_METHODS:
            patch.setattr(torch.Tensor, name, forbidden(f"Tensor.{name}"))
        for name in _TORCH_FUNCTIONS:
            patch.setattr(torch, name, forbidden(f"torch.{name}"))
        patch.setattr(torch.Tensor, "__getitem__", checked_getitem)
        patch.setattr(torch.Tensor, "__setitem__", checked_setitem)
        yield
