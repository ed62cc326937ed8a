"""A dense BEV feature map stored sparsely: the features of its active pixels and one background vector."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sparse_ops import SparseTensor


@dataclass(frozen=True, eq=False)
class SparseBevMap:
    """A ``[B, C, H, W]`` map whose pixels outside ``rows`` all hold the same vector ``background``.

    A BatchNorm with a shift turns the zeros around a sparse BEV backbone's active pixels into one constant
    vector, and a 1x1 conv turns a constant into a constant, so SECOND's neck and its head's 1x1 convs on
    Ada3D's kept pixels need only those pixels and the one background vector: this holds exactly what the
    dense map would, in memory proportional to the active pixels.

    Attributes:
        rows: 2D :class:`SparseTensor` ``[N, C]`` at ``(b, y, x)``, ``spatial_shape (H, W)``; padding rows
            (batch index -1, padded execution) are allowed and ignored.
        background: ``[C]`` the value of every other pixel, same dtype and device as ``rows.features``.
    """

    rows: SparseTensor
    background: torch.Tensor

    def __post_init__(self) -> None:
        channels = self.rows.num_channels
        if self.rows.ndim != 2 or self.background.shape != (channels,):
            raise ValueError(
                f"SparseBevMap needs a 2D SparseTensor and a [C] background of its {channels} channels, got "
                f"{self.rows!r} and background of shape {tuple(self.background.shape)}"
            )

    @property
    def shape(self) -> torch.Size:
        """``(B, C, H, W)`` of the dense map."""
        return torch.Size((self.rows.batch_size, self.rows.num_channels, *self.rows.spatial_shape))

    def num_active(self) -> int:
        """Active pixels, padding rows not counted (one device sync)."""
        return int((self.rows.indices[:, 0] >= 0).sum())

    def dense(self) -> torch.Tensor:
        """The ``[B, C, H, W]`` map (a channels-last view: writing ``N`` rows instead of transposing a grid)."""
        batch, channels, height, width = self.shape
        features = self.rows.features
        grid = self.background.to(features.dtype).expand(batch + 1, height, width, channels).clone()
        indices = self.rows.indices.long()
        batch_index = indices[:, 0].where(indices[:, 0] >= 0, batch)  # padding rows land in the spare sample
        grid.index_put_((batch_index, indices[:, 1], indices[:, 2]), features)
        return grid[:batch].permute(0, 3, 1, 2)

    def pointwise_linear(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> SparseBevMap:
        """A 1x1 conv of the map: ``weight [C_out, C]`` (or ``[C_out, C, 1, 1]``), ``bias [C_out]``, applied to
        the active rows and to the background."""
        weight = weight.flatten(1)
        features = F.linear(self.rows.features, weight, bias)
        background = F.linear(self.background.to(weight.dtype), weight, bias)
        return SparseBevMap(self.rows.replace_feature(features), background)
