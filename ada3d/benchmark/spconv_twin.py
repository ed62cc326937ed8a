"""Build spconv v2 twins of sparse_ops networks (same weights) to benchmark and cross-check against.

spconv is an optional, benchmark-only dependency. On CPU-only torch its backward calls
``torch.cuda.current_stream()`` and fails (spconv issue #366); :func:`import_spconv` patches that
call, which the CPU path does not use. spconv's CPU kernels also race with more than one OpenMP
thread and return wrong values, so CPU comparisons must run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from types import ModuleType

import torch
from torch import nn

from sparse_ops.nn import SparseConvolution, SparseSequential


def import_spconv() -> ModuleType:
    """``spconv.pytorch``, patched for CPU-only torch. Raises ImportError with install hints."""
    try:
        import spconv.pytorch as spconv
        import spconv.pytorch.cppcore as cppcore
        import spconv.pytorch.ops as ops
    except ImportError as error:
        raise ImportError(
            "the spconv comparison needs spconv v2: on CPU `pip install --no-deps spconv==2.3.8 cumm==0.7.11 "
            "pccm==0.4.16 ccimport==0.4.4 pybind11 fire`; on GPU see ../shared/tools/pack_gpu_baselines.sh"
        ) from error
    if not torch.cuda.is_available():
        ops.get_current_stream = cppcore.get_current_stream = lambda: 0
    return spconv


def to_spconv(module: nn.Module, spconv: ModuleType) -> nn.Module:
    """A copy of ``module`` with every sparse_ops layer replaced by its spconv twin (weights shared by value)."""
    if isinstance(module, SparseConvolution):
        return _conv_twin(module, spconv)
    if isinstance(module, SparseSequential):
        return spconv.SparseSequential(
            OrderedDict((name, to_spconv(child, spconv)) for name, child in module.named_children())
        )
    twin = copy.deepcopy(module)
    for name, child in module.named_children():
        setattr(twin, name, to_spconv(child, spconv))
    return twin


def _conv_twin(conv: SparseConvolution, spconv: ModuleType) -> nn.Module:
    g = conv.geometry
    has_bias = conv.bias is not None
    if conv.inverse:
        cls = spconv.SparseInverseConv3d if conv.ndim == 3 else spconv.SparseInverseConv2d
        twin = cls(conv.in_channels, conv.out_channels, g.kernel_size, indice_key=conv.indice_key, bias=has_bias)
    else:
        name = ("SubMConv" if conv.subm else "SparseConv") + f"{conv.ndim}d"
        twin = getattr(spconv, name)(
            conv.in_channels,
            conv.out_channels,
            g.kernel_size,
            g.stride,
            g.padding,
            g.dilation,
            bias=has_bias,
            indice_key=conv.indice_key,
        )
    twin.load_state_dict(conv.state_dict())
    return twin.to(conv.weight.device, conv.weight.dtype)
