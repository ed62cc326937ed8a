"""Ada3D's importance predictor: a small 2D CNN that scores importance-grid cells from detached features."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ada3d.models.adaptive.column_ops import encode_pool_rows, mean_max_pool_rows, pool_to_grid, site_cells
from ada3d.models.layers.norm import build_norm_layer, has_inference_affine, inference_affine
from ada3d.registry import MODELS
from sparse_ops import SparseTensor


@MODELS.register_module()
class ImportancePredictor(nn.Module):
    """Predicts, per importance-grid cell, how close it is to an object centre (a CenterPoint heatmap).

    One 1x1 adapter (conv, norm, ReLU) per named input brings its channels to ``hidden_channels``; one body is
    shared by all inputs: ``num_convs`` x (grouped 3x3 conv, norm, ReLU), then a 1x1 conv and a sigmoid. The input
    is detached: the predictor's loss never reaches the detector that produced the features. In eval mode on CUDA
    (without autograd) each (conv, BatchNorm, ReLU) block runs as one cuDNN call: the norm's running-statistics
    affine folded into the conv's weight and bias (recomputed per call, so new weights or statistics take effect at
    once), the bias and ReLU in the conv's epilogue (``torch.cudnn_convolution_relu``): one pass over the grid
    instead of three (conv, multiply-add, ReLU). On an H100 this took the predictor (1x1 adapter 64 -> 32, three
    grouped 3x3 convs, out conv; batch 16 on a 200 x 176 grid, TF32, a training run sharing the GPU) from 897 to
    467 us, where the folded weights in ``F.conv2d`` and a separate ReLU gained nothing. The call goes through the
    conv module, so its forward hooks (:class:`~ada3d.benchmark.flops.FlopCounter`'s) still count it. Elsewhere
    (CPU, training, other norms) each BatchNorm runs in eval mode as one multiply-add with its running statistics
    (the same function, a cheaper kernel).

    The input is a dense grid, or the sites of a sparse tensor with the grid's shape: they are mean-pooled into
    its cells (:func:`~ada3d.models.adaptive.column_ops.pool_to_grid`). In eval mode, when there are fewer sites
    (rows) than grid cells and the adapter's norm is a BatchNorm, the adapter (a 1x1 conv and an affine map) runs
    on the sites before the pooling: the mean of the projected sites is the projection of the mean, and a cell
    without sites gets the adapter's constant ``ReLU(shift)``. The same function, with the adapter's cost in
    proportion to the sites, not the cells, and ``hidden_channels`` to pool instead of the input's (256 for
    SECOND's BEV map). :meth:`fused_conv_calls` declares that adapter call to
    :class:`~ada3d.benchmark.flops.FlopCounter`.

    An input named in ``site_encoder_inputs`` first runs each site through its own encoder (linear, BatchNorm1d,
    ReLU to ``site_encoder_channels``), then pools the encoded sites per cell by their mean and their maximum (a
    pillar-feature-net front, as in PointPillars), and its adapter reads those ``2 * site_encoder_channels``. For the
    raw voxel features before the stem (mean point and intensity) the mean alone hides what sets a pedestrian
    apart from the ground in the same 0.4 m cell: the learned encoding with the maximum keeps it.

    Args:
        in_channels: channels of each input by name, e.g. ``{'encoder_layer2': 32, 'encoder_layer3': 64,
            'bev': 256}`` (read them from the modules that produce the features). Names may not contain ``.``.
        hidden_channels: channels of the adapters and the body.
        groups: groups of the body's 3x3 convs (must divide ``hidden_channels``).
        num_convs: 3x3 conv blocks of the body.
        norm_cfg: default ``dict(type='BN2d', eps=1e-3, momentum=0.01)``.
        prior_prob: initial output everywhere (the final bias is ``logit(prior_prob)``), near the mean of a
            sparse heatmap so training starts from a sensible map.
        site_encoder_inputs: inputs (names of ``in_channels``) whose sites are encoded before pooling (above);
            they must be given as sparse tensors.
        site_encoder_channels: channels of a site encoder's output.
        site_norm_cfg: a site encoder's norm on its ``[N, C]`` rows, default ``dict(type='BN1d', eps=1e-3,
            momentum=0.01)``; ``dict(type='SyncBN', ...)`` for statistics over all ranks under DDP.

    Shapes: ``forward(name, features [B, in_channels[name], H, W]) -> [B, 1, H, W]`` in ``(0, 1)``; for sites,
    ``forward(name, x, grid_shape=(H, W))`` with ``x`` a :class:`SparseTensor` of ``in_channels[name]`` channels.
    """

    def __init__(
        self,
        in_channels: dict[str, int],
        hidden_channels: int = 64,
        groups: int = 4,
        num_convs: int = 3,
        norm_cfg: dict | None = None,
        prior_prob: float = 0.1,
        site_encoder_inputs: Sequence[str] = (),
        site_encoder_channels: int = 32,
        site_norm_cfg: dict | None = None,
    ) -> None:
        super().__init__()
        if not in_channels:
            raise ValueError("ImportancePredictor needs at least one named input in in_channels, got none")
        bad_names = [name for name in in_channels if not isinstance(name, str) or not name or "." in name]
        if bad_names:
            raise ValueError(f"ImportancePredictor input names must be non-empty strings without '.', got {bad_names}")
        if hidden_channels % groups != 0:
            raise ValueError(f"groups={groups} must divide hidden_channels={hidden_channels}")
        if not 0.0 < prior_prob < 1.0:
            raise ValueError(f"prior_prob must lie in (0, 1), got {prior_prob}")
        norm_cfg = dict(type="BN2d", eps=1e-3, momentum=0.01) if norm_cfg is None else norm_cfg
        site_norm_cfg = dict(type="BN1d", eps=1e-3, momentum=0.01) if site_norm_cfg is None else site_norm_cfg
        unknown = [name for name in site_encoder_inputs if name not in in_channels]
        if unknown:
            raise ValueError(f"site_encoder_inputs {unknown} are not inputs of the predictor; its inputs: "
                             f"{list(in_channels)}")
        self.in_channels = dict(in_channels)
        self.site_encoders = nn.ModuleDict(
            {
                name: nn.Sequential(
                    nn.Linear(self.in_channels[name], site_encoder_channels, bias=False),
                    build_norm_layer(site_norm_cfg, site_encoder_channels),
                    nn.ReLU(inplace=True),
                )
                for name in site_encoder_inputs
            }
        )
        self.adapters = nn.ModuleDict(
            {
                name: nn.Sequential(
                    _EpilogueConv2d(2 * site_encoder_channels if name in self.site_encoders else channels,
                                    hidden_channels, 1, bias=False),
                    build_norm_layer(norm_cfg, hidden_channels),
                    nn.ReLU(inplace=True),
                )
                for name, channels in self.in_channels.items()
            }
        )
        body = []
        for _ in range(num_convs):
            body += [
                _EpilogueConv2d(hidden_channels, hidden_channels, 3, padding=1, groups=groups, bias=False),
                build_norm_layer(norm_cfg, hidden_channels),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*body)
        self.out_conv = nn.Conv2d(hidden_channels, 1, 1)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        nn.init.normal_(self.out_conv.weight, std=0.01)
        nn.init.constant_(self.out_conv.bias, math.log(prior_prob / (1 - prior_prob)))

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(self.in_channels)

    def forward(
        self,
        name: str,
        features: torch.Tensor | SparseTensor,
        grid_shape: Sequence[int] | None = None,
        cells: torch.Tensor | None = None,
        counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Importance ``[B, 1, H, W]`` in ``(0, 1)`` of input ``name``.

        Args:
            name: the input's name (a key of ``in_channels``).
            features: a dense grid ``[B, C_name, H, W]``, or a 2D / 3D :class:`SparseTensor` with ``C_name``
                channels whose sites are pooled to the grid (detached here).
            grid_shape: ``(H, W)`` of the grid, for sparse ``features``.
            cells: the sites' :func:`~ada3d.models.adaptive.column_ops.site_cells` on that grid, if already
                computed.
            counts: the sites per cell (:func:`~ada3d.models.adaptive.column_ops.cell_counts`), if already
                counted (the divisor of the mean pooling).
        """
        if name not in self.adapters:
            raise ValueError(f"ImportancePredictor has no input named {name!r}; known inputs: {self.input_names}")
        expected = self.in_channels[name]
        sparse = isinstance(features, SparseTensor)
        if sparse and features.num_channels != expected:
            raise ValueError(
                f"ImportancePredictor input {name!r} must have {expected} channels, got a SparseTensor with "
                f"{features.num_channels}"
            )
        if not sparse and (features.dim() != 4 or features.shape[1] != expected):
            raise ValueError(
                f"ImportancePredictor input {name!r} must be [B, {expected}, H, W], got shape {tuple(features.shape)}"
            )
        blocks = [*self.adapters[name], *self.body]  # (conv, norm, ReLU) triples
        if sparse:
            if grid_shape is None:
                raise ValueError("ImportancePredictor needs grid_shape=(H, W) to pool the sites of a SparseTensor")
            sites = features.replace_feature(features.features.detach())
            if name in self.site_encoders:
                hidden = self._encoded_sites(name, sites, grid_shape, cells, counts)
            elif self._adapts_sites(name, sites, grid_shape):  # see the class docstring
                hidden = self._adapted_sites(blocks[0], blocks[1], sites, grid_shape, cells, counts)
                blocks = blocks[3:]
            else:
                hidden = pool_to_grid(sites, grid_shape, cells=cells, counts=counts)
        elif name in self.site_encoders:
            raise ValueError(f"ImportancePredictor input {name!r} encodes its sites (site_encoder_inputs): give it a "
                             "SparseTensor, not a dense grid")
        else:
            hidden = features.detach()
        for conv, norm, activation in zip(blocks[0::3], blocks[1::3], blocks[2::3]):
            if self._fuses_block(conv, norm, activation, hidden):  # see the class docstring
                hidden = conv(hidden, inference_affine(norm))
                continue
            hidden = conv(hidden)
            hidden = norm(hidden) if self.training else _inference_norm(norm, hidden)
            hidden = activation(hidden)
        return torch.sigmoid(self.out_conv(hidden))

    def _fuses_block(self, conv: nn.Module, norm: nn.Module, activation: nn.Module, x: torch.Tensor) -> bool:
        """Whether an eval forward runs the block ``(conv, norm, activation)`` on ``x`` as one cuDNN call (class
        docstring): a zero-padded :class:`_EpilogueConv2d`, a norm with an inference affine and a ReLU, on a device
        where :func:`_cudnn_conv_relu_runs_on` ``x``, without autograd (the cuDNN op has no backward)."""
        foldable = isinstance(conv, _EpilogueConv2d) and conv.padding_mode == "zeros" and has_inference_affine(norm)
        if self.training or not foldable or not isinstance(activation, nn.ReLU) or not _cudnn_conv_relu_runs_on(x):
            return False
        tensors = (x, *conv.parameters(), *norm.parameters())
        return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))

    def _adapts_sites(self, name: str, x: SparseTensor, grid_shape: Sequence[int]) -> bool:
        """Whether an eval forward on the sites of ``x`` runs input ``name``'s adapter on them (class docstring)."""
        affine = has_inference_affine(self.adapters[name][1])
        fewer_sites = x.indices.shape[0] < x.batch_size * math.prod(grid_shape)
        return not self.training and name not in self.site_encoders and affine and fewer_sites

    def _encoded_sites(
        self,
        name: str,
        x: SparseTensor,
        grid_shape: Sequence[int],
        cells: torch.Tensor | None,
        counts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The sites of ``x`` through input ``name``'s encoder, pooled per cell: ``[B, 2 * C_e, H, W]``, the mean
        then the maximum (zero in cells without a site; padding rows left out of the pooling, so padded execution,
        which is inference only, gives the eager result; in training the encoder's BatchNorm would count them)."""
        linear, norm, _ = encoder = self.site_encoders[name]
        cells = site_cells(x, grid_shape) if cells is None else cells
        if self._folds_site_encoder(name):  # eval: the norm folded into the linear layer, one kernel on CUDA
            weight, bias = _folded(linear, *inference_affine(norm))
            return encode_pool_rows(x.features, weight, bias, cells, x.batch_size, grid_shape, counts)
        encoded = encoder(x.features.to(linear.weight.dtype))
        return mean_max_pool_rows(encoded, cells, x.batch_size, grid_shape, counts)

    def _folds_site_encoder(self, name: str) -> bool:
        """Whether an eval forward runs input ``name``'s site encoder as :func:`encode_pool_rows` (its BatchNorm
        folded into the linear layer, which has no bias)."""
        return not self.training and name in self.site_encoders and has_inference_affine(self.site_encoders[name][1])

    def _adapted_sites(
        self,
        conv: nn.Conv2d,
        norm: nn.Module,
        x: SparseTensor,
        grid_shape: Sequence[int],
        cells: torch.Tensor | None,
        counts: torch.Tensor | None,
    ) -> torch.Tensor:
        """Eval: ``ReLU(norm(conv(pool(x))))`` as ``ReLU(pool(x @ (scale * W)^T) + shift)``, ``[B, hidden, H, W]``
        (the shift after the pooling, so cells without a site get ``ReLU(shift)``)."""
        weight, shift = _folded(conv, *inference_affine(norm))
        projected = x.features @ weight[:, :, 0, 0].to(x.features.dtype).t()
        pooled = pool_to_grid(x.replace_feature(projected), grid_shape, cells=cells, counts=counts)
        return torch.relu_(pooled + shift.to(pooled.dtype)[:, None, None])

    def fused_conv_calls(self, inputs: tuple, output: torch.Tensor) -> list[tuple[str, nn.Module, SparseTensor, None]]:
        """For :class:`~ada3d.benchmark.flops.FlopCounter`: the layer an eval forward on sites ran itself, on those
        sites: a folded site encoder's linear layer, or the adapter conv (the other layers run as modules and are
        counted by their own hooks)."""
        name, features = inputs[0], inputs[1]
        if not isinstance(features, SparseTensor):
            return []
        if self._folds_site_encoder(name):
            return [(f"site_encoders.{name}.0", self.site_encoders[name][0], features.features, None)]
        if self._adapts_sites(name, features, output.shape[2:]):
            return [(f"adapters.{name}.0", self.adapters[name][0], features, None)]
        return []


class _EpilogueConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (the same parameters and state-dict keys) whose call can also apply a per-channel affine map
    and a ReLU in the conv's epilogue: ``conv(x, (scale, shift))`` is ``ReLU(conv(x) * scale + shift)`` as one
    ``torch.cudnn_convolution_relu`` call (CUDA and cuDNN only: :meth:`ImportancePredictor._fuses_block` decides).
    Running it as a call of the module keeps the conv visible to forward hooks: FlopCounter counts it as the conv
    on ``x`` (the output has the conv's shape), exactly as the unfused ``conv(x)``."""

    def forward(self, x: torch.Tensor, affine: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if affine is None:
            return super().forward(x)
        weight, bias = _folded(self, *affine)
        # the folded weight in the input's layout: cuDNN converts both to channels-last if either is, and an NCHW
        # input (a dense grid) would be copied for a channels-last weight; a pooled grid is channels-last
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        weight = weight.to(x.dtype).contiguous(memory_format=layout)
        return torch.cudnn_convolution_relu(x, weight, bias.to(x.dtype), self.stride, self.padding, self.dilation,
                                            self.groups)  # fmt: skip


def _folded(
    layer: nn.Linear | nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` of the layer ``x -> layer(x) * scale + shift`` (a linear layer or conv followed by its
    inference norm): ``weight`` of ``layer.weight``'s shape (``[C_out, C_in]`` or ``[C_out, C_in / groups, kH,
    kW]``), scaled per output channel, and ``bias [C_out]``, ``layer.bias * scale + shift`` (``shift`` for a layer
    without bias); ``scale`` and ``shift`` are ``[C_out]`` (e.g. :func:`inference_affine` of a BatchNorm). Computed
    now, in the weight's dtype."""
    dtype = layer.weight.dtype
    scale, shift = scale.to(dtype), shift.to(dtype)
    weight = layer.weight * scale.view(-1, *(1,) * (layer.weight.dim() - 1))
    bias = shift if layer.bias is None else torch.addcmul(shift, layer.bias, scale)
    return weight, bias


def _cudnn_conv_relu_runs_on(x: torch.Tensor) -> bool:
    """Whether ``torch.cudnn_convolution_relu`` can run on ``x``: a float CUDA tensor, cuDNN available and enabled,
    and the op present in this torch build."""
    return (
        x.is_cuda
        and x.dtype in (torch.float32, torch.float16, torch.bfloat16)
        and hasattr(torch, "cudnn_convolution_relu")
        and torch.backends.cudnn.enabled
        and torch.backends.cudnn.is_available()
    )


def _inference_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``norm(x)`` in eval mode; a BatchNorm2d runs as one multiply-add with its running statistics (on an H100,
    cuDNN's inference BatchNorm on these NCHW grids cost ~16 us a call plus layout conversions). Its scale and
    shift are computed per call, so new weights or statistics take effect at once; other norms run as they are."""
    if not has_inference_affine(norm):
        return norm(x)
    scale, shift = inference_affine(norm)
    return torch.addcmul(shift.to(x.dtype)[:, None, None], x, scale.to(x.dtype)[:, None, None])


def importance_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the predicted importance and the centre heatmap, both ``[B, 1, H, W]``."""
    if pred.shape != target.shape:
        raise ValueError(f"importance_loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    return F.mse_loss(pred, target.to(pred.dtype))
