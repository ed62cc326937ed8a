"""SECOND's BEV backbone on the kept BEV pixels only (Ada3D), with a dense execution of the same maths."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ada3d.models.adaptive.sp_norm import SparsityPreservingBatchNorm
from ada3d.models.backbones.second import stage_strides
from ada3d.models.layers.norm import build_norm_layer
from ada3d.registry import MODELS
from sparse_ops import SparseTensor
from sparse_ops.nn import SparseConv2d, SparseConvolution, SparseSequential, SubMConv2d

EXECUTIONS = ("sparse", "dense")


@MODELS.register_module()
class SparseSECOND(nn.Module):
    """SECOND's stages of ``conv3x3 -> norm -> ReLU`` on a sparse BEV map, zeros kept zero.

    Each stage starts with ``dilating_convs[i]`` regular (non-submanifold) 3x3 sparse convs, the first with the
    stage stride, all with padding 1: a regular conv's outputs are the sites whose 3x3 window holds an active
    input site, so each one dilates the active set by one cell (the strided one dilates and downsamples). The
    remaining convs of the stage are submanifold 3x3 convs on that set, sharing one kernel map per stage.
    Dilation matters for anchor heads: a car's centre often holds no LiDAR return (the scanner sees one or two
    of its sides), and a submanifold conv never puts features there. Every conv is bias-free and followed by a
    sparsity-preserving norm over the active sites and a ReLU. Time and memory of the sparse execution scale
    with the number of active sites.

    Args:
        in_channels: channels of the BEV map (the sparse encoder's ``out_channels``).
        out_channels: channels of each stage.
        layer_nums: extra submanifold conv blocks per stage.
        layer_strides: stride of each stage's first conv.
        dilating_convs: regular convs at the start of each stage (1 .. ``1 + layer_nums[i]``), default 1 each;
            ``k`` of them grow the active set by ``k`` cells (stride 1). The parameters are the same either way, so
            a checkpoint loads whatever this is set to.
        norm_cfg: a sparsity-preserving norm, default ``dict(type='SPBN', eps=1e-3, momentum=0.01)``
            (type ``SPBN``, which normalises both ``[N, C]`` rows and masked dense maps).
        execution: ``'sparse'``: sparse_ops convs on the active sites; ``'dense'``: the same parameters through
            ``F.conv2d`` on the whole grid, with the active set carried as a mask (first conv of a stage:
            ``max_pool2d(mask, 3, stride, 1)``) and the norm restricted to it. Both give the same numbers; the
            dense one needs no sparse kernels (export, hardware without them). Settable after construction.

    Shapes: a 2D SparseTensor (indices ``(b, y, x)``, ``spatial_shape (H, W)``, ``[N, in_channels]``) ->
    tuple of dense ``[B, out_channels[i], H_i, W_i]`` maps, zero at inactive sites, ``H_i = H / strides[i]``
    (rounded up). Conv weights are ``[C_out, 3, 3, C_in]`` (sparse_ops layout) under the parameter names of
    :class:`~ada3d.models.backbones.SECOND` (``blocks.{stage}.{3 * block}.weight``); the state dict is the same
    in both executions. :meth:`load_dense_second_weights` takes a dense SECOND's conv weights.
    """

    def __init__(
        self,
        in_channels: int = 128,
        out_channels: Sequence[int] = (128, 128, 256),
        layer_nums: Sequence[int] = (3, 5, 5),
        layer_strides: Sequence[int] = (2, 2, 2),
        norm_cfg: dict | None = None,
        execution: str = "sparse",
        dilating_convs: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        dilating_convs = [1] * len(out_channels) if dilating_convs is None else [int(n) for n in dilating_convs]
        if len(dilating_convs) != len(out_channels) or not all(
            1 <= n <= 1 + layers for n, layers in zip(dilating_convs, layer_nums)
        ):
            raise ValueError(
                f"dilating_convs needs one count per stage in 1 .. 1 + layer_nums[i] (layer_nums={list(layer_nums)}), "
                f"got {dilating_convs}"
            )
        norm_cfg = dict(type="SPBN", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        self.in_channels = in_channels
        self.out_channels = list(out_channels)
        self.strides = stage_strides(out_channels, layer_nums, layer_strides)
        self.execution = execution
        self.dilating_convs = dilating_convs
        blocks, channels = [], in_channels
        stages = zip(out_channels, layer_nums, layer_strides, dilating_convs)
        for i, (stage_channels, num_layers, stride, num_dilating) in enumerate(stages):
            layers = [SparseConv2d(channels, stage_channels, 3, stride, 1, bias=False, indice_key=f"bev_spconv{i + 1}")]
            layers += [
                SparseConv2d(stage_channels, stage_channels, 3, 1, 1, bias=False, indice_key=f"bev_dilate{i + 1}_{j}")
                for j in range(1, num_dilating)
            ]
            layers += [
                SubMConv2d(stage_channels, stage_channels, 3, bias=False, indice_key=f"bev_subm{i + 1}")
                for _ in range(num_layers + 1 - num_dilating)
            ]
            blocks.append(SparseSequential(*(m for conv in layers for m in self._conv_block(conv, norm_cfg))))
            channels = stage_channels
        self.blocks = nn.ModuleList(blocks)
        self._register_load_state_dict_pre_hook(self._accept_dense_conv_weights)

    def _accept_dense_conv_weights(self, state_dict: dict, prefix: str, *args) -> None:
        """Let ``load_state_dict`` (and mmengine's ``load_from``) take a dense SECOND's checkpoint: conv
        weights in ``[C_out, C_in, kh, kw]`` layout are permuted to ``[C_out, kh, kw, C_in]``."""
        for name, conv in self._convs():
            key = f"{prefix}{name}.weight"
            weight = state_dict.get(key)
            if weight is not None and tuple(weight.shape) == _dense_shape(conv) != tuple(conv.weight.shape):
                state_dict[key] = weight.permute(0, 2, 3, 1)

    def _convs(self) -> list[tuple[str, SparseConvolution]]:
        return [(name, m) for name, m in self.named_modules() if isinstance(m, SparseConvolution)]

    @staticmethod
    def _conv_block(conv: SparseConvolution, norm_cfg: dict) -> tuple[nn.Module, nn.Module, nn.Module]:
        """``(conv, norm, ReLU)`` with SECOND's init (Kaiming normal, fan-out, for ReLU)."""
        fan_out = conv.out_channels * math.prod(conv.kernel_size)
        nn.init.normal_(conv.weight, 0.0, math.sqrt(2.0 / fan_out))
        norm = build_norm_layer(norm_cfg, conv.out_channels)
        if type(norm) is not SparsityPreservingBatchNorm:
            raise ValueError(
                "SparseSECOND normalises [N, C] rows (sparse execution) and masked [B, C, H, W] maps (dense "
                f"execution) with the same layer: norm_cfg type must be 'SPBN', got {norm_cfg.get('type')!r}"
            )
        return conv, norm, nn.ReLU(inplace=True)

    @property
    def execution(self) -> str:
        return self._execution

    @execution.setter
    def execution(self, value: str) -> None:
        if value not in EXECUTIONS:
            raise ValueError(f"SparseSECOND execution must be one of {EXECUTIONS}, got {value!r}")
        self._execution = value

    def forward(self, x: SparseTensor) -> tuple[torch.Tensor, ...]:
        """Dense ``[B, out_channels[i], H_i, W_i]`` per stage, zero outside the active sites."""
        self._check_input(x)
        if self._execution == "dense":
            return self._forward_dense(x)
        return tuple(stage.dense() for stage in self.forward_sparse(x))

    def forward_sparse(self, x: SparseTensor) -> tuple[SparseTensor, ...]:
        """The sparse execution, stopping short of densifying: one SparseTensor per stage (its kernel-map
        cache holds every map used, e.g. for counting the multiply-accumulates)."""
        self._check_input(x)
        outputs = []
        for block in self.blocks:
            x = block(x)
            outputs.append(x)
        return tuple(outputs)

    def _forward_dense(self, x: SparseTensor) -> tuple[torch.Tensor, ...]:
        features = x.dense()
        # one spare sample, where padding rows (batch -1, padded execution) land, cut off again
        mask = torch.zeros((x.batch_size + 1, *x.spatial_shape), dtype=torch.bool, device=features.device)
        sites = tuple(x.indices.long().unbind(dim=1))
        mask.index_put_(sites, torch.ones_like(sites[0], dtype=torch.bool))  # device values: capturable
        mask = mask[: x.batch_size]
        outputs = []
        for block in self.blocks:
            for conv, norm, activation in zip(block[0::3], block[1::3], block[2::3]):
                geometry = conv.geometry
                if geometry.subm:
                    padding = tuple(k // 2 * d for k, d in zip(geometry.kernel_size, geometry.dilation))
                    stride = 1
                else:
                    padding, stride = geometry.padding, geometry.stride
                    window = F.max_pool2d(
                        mask.unsqueeze(1).to(features.dtype), geometry.kernel_size, stride, padding, geometry.dilation
                    )
                    mask = window.squeeze(1) > 0
                weight = conv.weight.permute(0, 3, 1, 2)  # [C_out, kh, kw, C_in] -> [C_out, C_in, kh, kw]
                features = F.conv2d(features, weight, None, stride, padding, geometry.dilation)
                features = activation(norm(features, mask))  # the norm zeroes everything outside the mask
            outputs.append(features)
        return tuple(outputs)

    def _check_input(self, x: SparseTensor) -> None:
        if not isinstance(x, SparseTensor) or x.ndim != 2 or x.num_channels != self.in_channels:
            raise ValueError(
                f"SparseSECOND needs a 2D SparseTensor with {self.in_channels} channels (indices (b, y, x)), got {x!r}"
            )

    def load_dense_second_weights(self, state_dict: Mapping[str, torch.Tensor], prefix: str = "") -> None:
        """Initialise the convs from a dense :class:`~ada3d.models.backbones.SECOND` of the same shape.

        Args:
            state_dict: the dense backbone's state dict (conv weights ``[C_out, C_in, kh, kw]``), or a whole
                detector's with ``prefix`` (e.g. ``'backbone.'``).
            prefix: prepended to this module's parameter names to find them in ``state_dict``.

        Only conv weights are taken (permuted to ``[C_out, kh, kw, C_in]``): BatchNorm's statistics and bias do
        not carry over to SP-BN, whose norms keep their current state.

        Raises:
            ValueError: naming the keys that are missing or whose shapes do not fit.
        """
        problems, weights = [], {}
        for name, conv in self._convs():
            key = f"{prefix}{name}.weight"
            dense = state_dict.get(key)
            if dense is None:
                problems.append(f"{key} missing")
            elif tuple(dense.shape) != _dense_shape(conv):
                problems.append(f"{key} has shape {tuple(dense.shape)}, expected {_dense_shape(conv)}")
            else:
                weights[f"{name}.weight"] = dense
        if problems:
            raise ValueError("cannot load dense SECOND conv weights into SparseSECOND: " + "; ".join(problems))
        self.load_state_dict(weights, strict=False)  # the load hook permutes them to sparse_ops' layout

    def extra_repr(self) -> str:
        return f"execution={self._execution!r}, dilating_convs={self.dilating_convs}"


def _dense_shape(conv: SparseConvolution) -> tuple[int, ...]:
    """The ``nn.Conv2d`` weight shape ``(C_out, C_in, kh, kw)`` of ``conv``."""
    return (conv.out_channels, conv.in_channels, *conv.kernel_size)
