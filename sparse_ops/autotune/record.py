"""Recording what each sparse convolution of a model computes on, and grouping layers by kernel map.

One forward pass with hooks yields, per :class:`~sparse_ops.nn.SparseConvolution`, its input features
and the :class:`~sparse_ops.kmap.KernelMap` it ran on. Layers that ran on the same map object (spconv's
``indice_key`` on the same sites) form a :class:`LayerGroup`: they share the map's derived layouts
(neighbour tables, sorted tilings), so the autotuner gives them one configuration and times them together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from sparse_ops.kmap.kernel_map import KernelMap
from sparse_ops.nn.conv import SparseConvolution


@dataclass(eq=False)
class LayerCall:
    """One convolution as it ran in the recorded pass.

    Attributes:
        name: the module's qualified name in the model (``encoder_layers.encoder_layer2.0.0``).
        module: the convolution.
        features: ``[N_in, C_in]`` input features in the dtype the convolution computed in
            (the autocast dtype where autocast was on), detached.
        kmap: the kernel map it used.
    """

    name: str
    module: SparseConvolution
    features: torch.Tensor
    kmap: KernelMap


def _dims(values: tuple[int, ...]) -> str:
    return "x".join(str(v) for v in values)


@dataclass(eq=False)
class LayerGroup:
    """Convolutions that ran on one kernel map, in call order."""

    calls: list[LayerCall]

    @property
    def kmap(self) -> KernelMap:
        return self.calls[0].kmap

    @property
    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    @property
    def device(self) -> torch.device:
        return self.calls[0].features.device

    @property
    def dtype(self) -> torch.dtype:
        return self.calls[0].features.dtype

    @property
    def in_channels(self) -> int:
        """The widest input of the group (tile sizes are bounded by it)."""
        return max(call.module.in_channels for call in self.calls)

    @property
    def out_channels(self) -> int:
        return max(call.module.out_channels for call in self.calls)

    def signature(self) -> str:
        """Geometry and channels, e.g. ``3d subm k3x3x3 s1x1x1 d1x1x1 4>16,16>16``."""
        first = self.calls[0].module
        geometry = self.kmap.geometry
        kind = "inverse" if first.inverse else "subm" if first.subm else "strided"
        channels = ",".join(f"{call.module.in_channels}>{call.module.out_channels}" for call in self.calls)
        shape = f"k{_dims(geometry.kernel_size)} s{_dims(geometry.stride)} d{_dims(geometry.dilation)}"
        return f"{geometry.ndim}d {kind} {shape} {channels}"

    def bucket(self) -> str:
        """Power-of-two size bucket of the map: ``in/out/pairs`` as bit lengths (``2^(b-1) <= n < 2^b``)."""
        kmap = self.kmap
        if kmap.built_pairs is not None:
            num_pairs = kmap.num_pairs
        else:  # count from the neighbour table instead of deriving the pair layout
            num_pairs = int((kmap.tables.forward >= 0).sum())
        return f"in{kmap.num_in.bit_length()}/out{kmap.num_out.bit_length()}/pairs{num_pairs.bit_length()}"


def record_layer_calls(model: nn.Module, run: Callable[[], object]) -> list[LayerCall]:
    """Run ``run()`` (which calls ``model``) once under ``no_grad`` and record every sparse convolution.

    A module called more than once is recorded at its first call (it has one ``config``).

    Returns:
        The calls in execution order.
    """
    names = {module: name for name, module in model.named_modules() if isinstance(module, SparseConvolution)}
    calls: dict[SparseConvolution, LayerCall] = {}

    def after_forward(module: SparseConvolution, args: tuple, output: object) -> None:
        if module in calls:
            return
        x = args[0]
        features = x.features.detach()
        device_type = features.device.type
        if torch.is_autocast_enabled(device_type):
            features = features.to(torch.get_autocast_dtype(device_type))
        # keyed maps come from the tensor's cache (the object forward used); unkeyed ones are rebuilt
        calls[module] = LayerCall(names[module], module, features, module.kernel_map(x))

    handles = [module.register_forward_hook(after_forward) for module in names]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return list(calls.values())


def group_by_kernel_map(calls: list[LayerCall]) -> list[LayerGroup]:
    """Calls that used the same kernel map object, grouped, in order of each group's first call."""
    groups: dict[int, LayerGroup] = {}
    for call in calls:
        group = groups.setdefault(id(call.kmap), LayerGroup([]))
        group.calls.append(call)
    return list(groups.values())
