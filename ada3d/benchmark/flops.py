"""FLOPs of what a forward pass actually ran, counted by forward hooks (2 FLOPs per multiply-add).

Counted layers and their multiply-adds:

* sparse convolutions (``sparse_ops.nn.SparseConvolution``: submanifold, strided, inverse): one multiply-add per
  (input site, output site) pair of the kernel map the layer used, per input and output channel:
  ``pairs x C_in x C_out``. The pairs are what the layer computed, so dropped voxels cost nothing.
* dense convolutions (``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d``): with ``dense_convs='dense'`` every
  output position of every sample, ``B x C_out x prod(out_size) x C_in / groups x prod(kernel)`` (the
  transposed convs by their input positions). With ``dense_convs='nonzero_inputs'`` only the pairs whose input
  position holds a non-zero value in some channel: the work of a sparse convolution that skips zero inputs.
  That equals a strided sparse conv's count on the same active set and bounds a submanifold one from above
  (those also skip the outputs next to, but outside, the active set).
* ``nn.Linear``: ``rows x in_features x out_features``.

A module that runs its child convs' weights itself (e.g. ``Anchor3DHead``'s 1x1 branches, stacked into one conv)
declares them with ``fused_conv_calls(inputs, output)``, a list of ``(child name, conv, input, output)``: they count as
those convs called on those tensors, or, for an input that is a SparseTensor or a SparseBevMap (Ada3D's sparse neck
and head), on its active pixels (:func:`active_rows_conv_flops`). A declared ``nn.Linear`` counts on its input rows.

Biases, normalisation, activations, pooling and indexing are not counted (they are a few percent of a
SECOND-style detector). Counts are grouped by the model's top-level children (``voxel_encoder``,
``middle_encoder``, ``backbone``, ``neck``, ``bbox_head``, an Ada3D predictor, ...).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops.nn.conv import SparseConvolution
from sparse_ops.tensor import SparseTensor

DENSE_CONV_MODES = ("dense", "nonzero_inputs")
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED_CONVS = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ROOT = "(model)"  # group of layers that are the model itself


def sparse_conv_flops(conv: SparseConvolution, x: SparseTensor) -> int:
    """``2 x pairs x C_in x C_out`` of ``conv`` on input ``x``, the pairs read from the kernel map the layer used
    (its cached map under ``indice_key``; rebuilt when the layer caches none)."""
    return 2 * conv.kernel_map(x).num_pairs * conv.in_channels * conv.out_channels


def _window_pairs(conv: nn.Module, x: torch.Tensor) -> int:
    """Number of (non-zero input position, output position) pairs of ``conv`` on ``x [B, C, *size]``: the conv
    with a ones kernel of one channel applied to the 0/1 map of positions with any non-zero channel."""
    ndim = x.dim() - 2
    active = (x != 0).any(dim=1, keepdim=True).to(torch.float64)
    ones = torch.ones(1, 1, *conv.kernel_size, dtype=torch.float64, device=x.device)
    if isinstance(conv, _TRANSPOSED_CONVS):
        transpose = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[ndim - 1]
        counts = transpose(active, ones, None, conv.stride, conv.padding, conv.output_padding, 1, conv.dilation)
    else:
        convolve = (F.conv1d, F.conv2d, F.conv3d)[ndim - 1]
        counts = convolve(active, ones, None, conv.stride, conv.padding, conv.dilation)
    return int(round(float(counts.sum())))


def dense_conv_flops(conv: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str = "dense") -> int:
    """FLOPs of a dense (transposed) convolution with input ``x [B, C_in, *in_size]`` and output
    ``y [B, C_out, *out_size]``; ``mode`` as :data:`DENSE_CONV_MODES` (see the module docstring)."""
    if mode not in DENSE_CONV_MODES:
        raise ValueError(f"dense conv counting mode must be one of {DENSE_CONV_MODES}, got {mode!r}")
    per_pair = conv.in_channels * conv.out_channels // conv.groups
    if mode == "nonzero_inputs":
        pairs = _window_pairs(conv, x)
    elif isinstance(conv, _TRANSPOSED_CONVS):  # every input position feeds a full kernel window
        pairs = x.shape[0] * math.prod(x.shape[2:]) * math.prod(conv.kernel_size)
    else:
        pairs = y.shape[0] * math.prod(y.shape[2:]) * math.prod(conv.kernel_size)
    return 2 * pairs * per_pair


def active_rows_conv_flops(conv: nn.Module, x: SparseTensor | SparseBevMap) -> int:
    """FLOPs of a dense conv whose kernel windows do not overlap (a 1x1 conv, a transposed conv with kernel =
    stride) run on the active pixels of ``x`` only: each feeds one full window, ``2 x pixels x prod(kernel) x
    C_in x C_out / groups`` (a :class:`SparseBevMap`'s single background vector is not counted)."""
    rows = x.rows if isinstance(x, SparseBevMap) else x
    pixels = int((rows.indices[:, 0] >= 0).sum())
    return 2 * pixels * math.prod(conv.kernel_size) * conv.in_channels * conv.out_channels // conv.groups


def linear_flops(linear: nn.Linear, x: torch.Tensor) -> int:
    """``2 x rows x in_features x out_features`` for input ``x [..., in_features]``."""
    return 2 * (x.numel() // linear.in_features) * linear.in_features * linear.out_features


class FlopCounter:
    """Count the FLOPs of every forward pass run inside the ``with`` block.

    Args:
        model: the module whose layers are hooked; counts are grouped by its top-level children.
        dense_convs: ``'dense'`` or ``'nonzero_inputs'``, how dense convolutions count (module docstring).

    Example::

        with FlopCounter(model) as flops:
            model.encode_3d(voxels)
        flops.by_module  # {'voxel_encoder': 0, 'middle_encoder': 1.2e9, ...} (only modules that ran)
        flops.total

    Counts accumulate over several forward passes until :meth:`reset`.
    """

    def __init__(self, model: nn.Module, dense_convs: str = "dense") -> None:
        if dense_convs not in DENSE_CONV_MODES:
            raise ValueError(f"dense_convs must be one of {DENSE_CONV_MODES}, got {dense_convs!r}")
        self.model = model
        self.dense_convs = dense_convs
        self.by_layer: dict[str, int] = defaultdict(int)
        self._handles: list = []

    def __enter__(self) -> FlopCounter:
        for name, module in self.model.named_modules():
            if isinstance(module, (SparseConvolution, nn.Linear, *_CONVS, *_TRANSPOSED_CONVS)):
                self._handles.append(module.register_forward_hook(self._hook(name)))
            if hasattr(module, "fused_conv_calls"):
                self._handles.append(module.register_forward_hook(self._fused_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def count(module: nn.Module, inputs: tuple, output) -> None:
            x = inputs[0]
            if isinstance(module, SparseConvolution):
                flops = sparse_conv_flops(module, x)
            elif isinstance(module, nn.Linear):
                flops = linear_flops(module, x)
            else:
                flops = dense_conv_flops(module, x, output, self.dense_convs)
            self.by_layer[name] += flops

        return count

    def _fused_hook(self, name: str):
        def count(module: nn.Module, inputs: tuple, output) -> None:
            for child, conv, x, y in module.fused_conv_calls(inputs, output):
                if isinstance(conv, nn.Linear):
                    flops = linear_flops(conv, x)
                elif isinstance(x, (SparseTensor, SparseBevMap)):
                    flops = active_rows_conv_flops(conv, x)
                else:
                    flops = dense_conv_flops(conv, x, y, self.dense_convs)
                self.by_layer[f"{name}.{child}" if name else child] += flops

        return count

    def reset(self) -> None:
        self.by_layer.clear()

    @property
    def by_module(self) -> dict[str, int]:
        """FLOPs per top-level child of the model (``'(model)'`` for the model itself being a counted layer)."""
        groups: dict[str, int] = defaultdict(int)
        for name, flops in self.by_layer.items():
            groups[name.split(".", 1)[0] or _ROOT] += flops
        return dict(groups)

    @property
    def total(self) -> int:
        return sum(self.by_layer.values())
