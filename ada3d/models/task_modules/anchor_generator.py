"""3D anchors on a BEV feature grid (mmdet3d's ``Anchor3DRangeGenerator`` and its aligned variant)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ada3d.registry import TASK_UTILS


@TASK_UTILS.register_module()
class Anchor3DRangeGenerator:
    """Anchors spread over a metric range, one set of sizes x rotations at every feature-map cell.

    Args:
        ranges: per anchor size (``size_per_range``) or one for all, ``[x0, y0, z0, x1, y1, z1]`` in
            metres; the anchor centres span ``[x0, x1] x [y0, y1]`` and sit at height ``z0`` (the box
            bottom, as LiDAR boxes; ``z1 == z0`` for a 2D map).
        sizes: anchor sizes ``[[l, w, h], ...]`` in metres (KITTI 3-class: Pedestrian, Cyclist, Car).
        scales: one size multiplier per feature level.
        rotations: yaws (radians) of the anchors at each location.
        custom_values: extra zero columns appended to every anchor (e.g. two velocities on nuScenes).
        reshape_out: return ``[N, 7 + extra]`` per level instead of the structured layout below.
        size_per_range: one range per size (True) or one range shared by all sizes (False).

    Layout (``reshape_out=False``): ``[D, H, W, num_sizes, num_rotations, 7 + extra]`` per level, D = 1
    for a BEV map; the anchor index within a cell is ``size * num_rotations + rotation``, the order in
    which the head's 1x1 convs lay out their per-anchor channels. Anchors are ``(x, y, z, l, w, h, yaw)``.
    """

    def __init__(
        self,
        ranges: Sequence[Sequence[float]],
        sizes: Sequence[Sequence[float]] | None = None,
        scales: Sequence[float] | None = None,
        rotations: Sequence[float] | None = None,
        custom_values: Sequence[float] | None = None,
        reshape_out: bool = True,
        size_per_range: bool = True,
    ) -> None:
        sizes = [[3.9, 1.6, 1.56]] if sizes is None else [list(size) for size in sizes]
        ranges = [list(anchor_range) for anchor_range in ranges]
        if any(len(size) != 3 for size in sizes):
            raise ValueError(f"anchor sizes must be [l, w, h] triples, got {sizes}")
        if any(len(anchor_range) != 6 for anchor_range in ranges):
            raise ValueError(f"anchor ranges must be [x0, y0, z0, x1, y1, z1], got {ranges}")
        if size_per_range and len(ranges) == 1:
            ranges = ranges * len(sizes)
        if (size_per_range and len(ranges) != len(sizes)) or (not size_per_range and len(ranges) != 1):
            raise ValueError(
                f"{len(ranges)} anchor ranges for {len(sizes)} sizes: give one range per size "
                "(size_per_range=True) or a single range"
            )
        self.ranges = ranges
        self.sizes = sizes
        self.scales = [1.0] if scales is None else list(scales)
        self.rotations = [0.0, math.pi / 2] if rotations is None else list(rotations)
        self.custom_values = [] if custom_values is None else list(custom_values)
        self.reshape_out = reshape_out
        self.size_per_range = size_per_range

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(ranges={self.ranges}, sizes={self.sizes}, scales={self.scales}, "
            f"rotations={self.rotations}, reshape_out={self.reshape_out}, size_per_range={self.size_per_range})"
        )

    @property
    def num_sizes(self) -> int:
        return len(self.sizes)

    @property
    def num_rotations(self) -> int:
        return len(self.rotations)

    @property
    def num_base_anchors(self) -> int:
        """Anchors per feature-map cell."""
        return self.num_sizes * self.num_rotations

    @property
    def num_levels(self) -> int:
        return len(self.scales)

    @property
    def box_dim(self) -> int:
        return 7 + len(self.custom_values)

    def grid_anchors(self, featmap_sizes: Sequence[Sequence[int]], device: torch.device | str = "cpu") -> list:
        """Anchors of every level: ``featmap_sizes`` holds ``(H, W)`` (or ``(D, H, W)``) per level."""
        if len(featmap_sizes) != self.num_levels:
            raise ValueError(f"{len(featmap_sizes)} feature maps for an anchor generator of {self.num_levels} levels")
        levels = [
            self.single_level_grid_anchors(size, scale, device) for size, scale in zip(featmap_sizes, self.scales)
        ]
        return [anchors.reshape(-1, self.box_dim) for anchors in levels] if self.reshape_out else levels

    def single_level_grid_anchors(
        self, featmap_size: Sequence[int], scale: float = 1.0, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """``[D, H, W, num_sizes, num_rotations, 7 + extra]`` anchors of one feature map."""
        grid = [1, *featmap_size] if len(featmap_size) == 2 else list(featmap_size)
        if self.size_per_range:
            per_size = [
                self._anchors_in_range(grid, anchor_range, [size], scale, device)
                for anchor_range, size in zip(self.ranges, self.sizes)
            ]
            return torch.cat(per_size, dim=-3)
        return self._anchors_in_range(grid, self.ranges[0], self.sizes, scale, device)

    def _centres(self, low: float, high: float, count: int, device) -> torch.Tensor:
        """``count`` centres spread from ``low`` to ``high`` inclusive."""
        return torch.linspace(low, high, count, device=device)

    def _anchors_in_range(self, grid, anchor_range, sizes, scale, device) -> torch.Tensor:
        depth, height, width = grid
        z = self._centres(anchor_range[2], anchor_range[5], depth, device)
        y = self._centres(anchor_range[1], anchor_range[4], height, device)
        x = self._centres(anchor_range[0], anchor_range[3], width, device)
        sizes = torch.tensor(sizes, dtype=torch.float32, device=device) * scale
        rotations = torch.tensor(self.rotations, dtype=torch.float32, device=device)
        shape = (depth, height, width, len(sizes), len(rotations))
        columns = [
            x.view(1, 1, -1, 1, 1).expand(shape),
            y.view(1, -1, 1, 1, 1).expand(shape),
            z.view(-1, 1, 1, 1, 1).expand(shape),
            *(sizes[:, k].view(1, 1, 1, -1, 1).expand(shape) for k in range(3)),
            rotations.view(1, 1, 1, 1, -1).expand(shape),
            *(torch.zeros(shape, device=device) for _ in self.custom_values),
        ]
        return torch.stack(columns, dim=-1)


@TASK_UTILS.register_module()
class AlignedAnchor3DRangeGenerator(Anchor3DRangeGenerator):
    """Anchors at the centres of the cells that tile the range (or at their corners, ``align_corner``).

    :class:`Anchor3DRangeGenerator` puts the first and last anchors on the range's edges, so its anchors
    drift against the feature cells; this variant divides the range into ``H x W`` cells instead.
    """

    def __init__(self, align_corner: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.align_corner = align_corner

    def _centres(self, low: float, high: float, count: int, device) -> torch.Tensor:
        edges = torch.linspace(low, high, count + 1, device=device)[:count]
        return edges if self.align_corner else edges + (high - low) / count / 2
