"""Build spconv v2 twins of sparse_ops networks (same weights) to benchmark and cross-check against.

spconv is an optional, benchmark-only dependency. On CPU-only torch its backward calls
``torch.cuda.current_stream()`` and fails (spconv issue #366); :func:`import_spconv` patches that
call, which the CPU path does not use. spconv's CPU kernels also race with more than one OpenMP
thread and return wrong values, so CPU comparisons must run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import copy
import functools
from collections import OrderedDict
from types import ModuleType

import torch
from torch import nn

from sparse_ops.nn import SparseConvolution, SparseModule, SparseSequential


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
    """A copy of ``module`` with every sparse_ops layer replaced by its spconv twin (weights copied by value).

    Convolutions and ``SparseSequential`` become spconv's classes. Any other sparse module (a residual
    block, say) keeps its own ``forward`` but also becomes an ``spconv.SparseModule``, so spconv's
    ``SparseSequential`` hands it the whole tensor; its forward must use only what both tensor classes
    have (``features``, ``replace_feature``, ``indices``, ``spatial_shape``, ``batch_size``, ``dense``).
    A module declaring ``sparse_tensor_type`` (our encoders) wraps its inputs in ``SparseConvTensor``.
    """
    if isinstance(module, SparseConvolution):
        return _conv_twin(module, spconv)
    if isinstance(module, SparseSequential):
        return spconv.SparseSequential(
            OrderedDict((name, to_spconv(child, spconv)) for name, child in module.named_children())
        )
    twin = copy.deepcopy(module)
    if isinstance(module, SparseModule):
        twin.__class__ = _spconv_module_class(type(module), spconv.SparseModule)
        twin.name, twin._sparse_unique_name = None, ""  # what spconv.SparseModule.__init__ sets
    if hasattr(module, "sparse_tensor_type"):
        twin.sparse_tensor_type = spconv.SparseConvTensor
    for name, child in module.named_children():
        setattr(twin, name, to_spconv(child, spconv))
    return twin


@functools.cache
def _spconv_module_class(cls: type, spconv_module: type) -> type:
    """A subclass of ``cls`` that is also an ``spconv.SparseModule`` (built once per ``cls``)."""
    return type(f"{cls.__name__}SpconvTwin", (cls, spconv_module), {"__module__": cls.__module__})


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
    if has_bias and conv.weight.device.type == "cpu":
        twin.forward = functools.partial(_forward_adding_bias, twin)
    return twin.to(conv.weight.device, conv.weight.dtype)


def _forward_adding_bias(conv: nn.Module, x):
    """spconv's CPU kernels cannot fuse a bias into inference ("cpu don't support act and bias"); its
    training code path adds the bias after the GEMM instead, which is all the flag changes on CPU."""
    return conv._conv_forward(
        True, x, conv.weight, conv.bias, name=conv.name, sparse_unique_name=conv._sparse_unique_name
    )
