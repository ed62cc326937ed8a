"""The engines a benchmark compares, all running the same encoder weights on the same inputs.

* ``ours``: sparse_ops, eager PyTorch (inference and training);
* ``ours+graphs``: sparse_ops replayed through CUDA graphs (CUDA only): inference through
  :class:`sparse_ops.graphs.CudaGraphRunner`, training through :class:`sparse_ops.graph_training.CudaGraphTrainer`
  (forward and backward graphs; the loss and autograd's accumulation into ``.grad`` stay eager);
* ``spconv``: spconv v2, a twin of the encoder built by :func:`ada3d.benchmark.spconv_twin.to_spconv`.

Every run starts from the raw voxel features and coordinates, so kernel-map building is timed too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from ada3d.benchmark.inputs import EncoderInput
from sparse_ops.conv import ConvConfig
from sparse_ops.graph_training import CudaGraphTrainer
from sparse_ops.graphs import CudaGraphRunner
from sparse_ops.nn import SparseConvolution


@dataclass
class Engine:
    """An encoder and how it is called.

    Attributes:
        name: the engine's column label.
        module: the encoder (for ``ours+graphs``, the one the graphs are captured from).
        cuda_graphs: run through a CudaGraphRunner / CudaGraphTrainer (a new one per ``inference`` /
            ``training`` call, so its captures happen inside the timed function's warm-up and its memory is
            measured).
    """

    name: str
    module: nn.Module
    cuda_graphs: bool = False

    def inference(self, batch: EncoderInput, dtype: torch.dtype) -> Callable[[], torch.Tensor]:
        """An ``eval()``, ``no_grad`` forward over ``batch``, returning the BEV map."""
        self.module.eval()
        features = batch.features.to(dtype)
        forward = self.module
        if self.cuda_graphs:  # the output is the graph's buffer, as a deployment (TensorRT) hands out its bindings
            forward = CudaGraphRunner(self.module.forward, self.module.sparse_shape, copy_outputs=False)

        def run() -> torch.Tensor:
            with torch.no_grad():
                return forward(features, batch.coors, batch.batch_size)

        return run

    def training(self, batch: EncoderInput, dtype: torch.dtype) -> Callable[[], None]:
        """A ``train()`` forward and backward of ``mean(output ** 2)`` over ``batch`` (no optimiser step).

        Run it inside :func:`restored_state`: train mode updates the BatchNorm running statistics.
        """
        self.module.train()
        self.module.zero_grad(set_to_none=True)
        features = batch.features.to(dtype)
        forward = self.module
        if self.cuda_graphs:
            forward = CudaGraphTrainer(self.module, self.module.sparse_shape, copy_outputs=False)

        def run() -> None:
            self.module.zero_grad(set_to_none=True)
            out = forward(features, batch.coors, batch.batch_size)
            out.float().square().mean().backward()

        return run


@contextmanager
def restored_state(module: nn.Module) -> Iterator[None]:
    """Put ``module``'s parameters and buffers back as they were on exit (in place, so CUDA graphs stay valid)."""
    saved = {name: value.detach().clone() for name, value in module.state_dict().items()}
    try:
        yield
    finally:
        module.load_state_dict(saved)
        module.zero_grad(set_to_none=True)


def set_dataflow(encoder: nn.Module, config: ConvConfig | None) -> None:
    """Force one dataflow (and tiles) on every sparse conv of ``encoder``; None restores each layer's default."""
    for module in encoder.modules():
        if isinstance(module, SparseConvolution):
            module.config = config


def build_engines(encoder: nn.Module, cuda_graphs: bool = False, compare_spconv: bool = False) -> list[Engine]:
    """``ours``, then ``ours+graphs`` and ``spconv`` if asked for, sharing ``encoder``'s weights.

    Raises:
        ValueError: for CUDA graphs with an encoder that is not on a CUDA device.
        ImportError: for ``compare_spconv`` without spconv v2 installed.
    """
    engines = [Engine("ours", encoder)]
    if cuda_graphs:
        device = next(encoder.parameters()).device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, the encoder is on {device}")
        engines.append(Engine("ours+graphs", encoder, cuda_graphs=True))
    if compare_spconv:
        from ada3d.benchmark.spconv_twin import import_spconv, to_spconv

        engines.append(Engine("spconv", to_spconv(encoder, import_spconv())))
    return engines


def set_tf32(enabled: bool) -> None:
    """Allow (or forbid) TF32 tensor-core math for fp32 in every engine.

    torch's matmul and cuDNN flags cover our kernels; spconv ignores them and reads its own
    ``spconv.constants.SPCONV_ALLOW_TF32`` (default False), set here too when spconv is loaded. spconv reads
    its flag at the first convolution of each problem shape and keeps that choice, so call this before
    spconv's first run (measured on an H100: switched later, spconv's output stayed bitwise IEEE fp32).
    """
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled
    if "spconv" in sys.modules:
        import spconv.constants

        spconv.constants.SPCONV_ALLOW_TF32 = enabled
