"""How much each Ada3D drop stage kept, and how much of the ground truth it dropped, as summable counts.

All cells are cells of the importance grid (the BEV grid the 2D backbone reads, ``[H, W]``, rows = y,
cols = x; see ADA3D's design notes). A ground-truth cell is a cell whose centre lies inside a ground-truth
box seen from above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.pruning_record import PruningRecord


@dataclass(frozen=True)
class StageCounts:
    """Counts of one drop stage over one or more batches (add two with ``+``).

    Attributes:
        stage: the stage name (``'encoder_layer2'``, ``'bev'``, ...).
        sites_before / sites_after: active sites (voxels, or BEV pixels) before / after dropping.
        occupied / kept: occupied importance cells, and the occupied cells kept.
        grid_cells: ``B x H x W``, all cells of the importance grid.
        gt_occupied / gt_dropped: occupied ground-truth cells, and those of them not kept.
        gt_occupied_by_class / gt_dropped_by_class: the same per class, in label order (empty when the classes
            were not counted); a cell inside boxes of two classes counts for both.
    """

    stage: str
    sites_before: int
    sites_after: int
    occupied: int
    kept: int
    grid_cells: int
    gt_occupied: int
    gt_dropped: int
    gt_occupied_by_class: tuple[int, ...] = ()
    gt_dropped_by_class: tuple[int, ...] = ()

    def __add__(self, other: StageCounts) -> StageCounts:
        if other.stage != self.stage:
            raise ValueError(f"cannot add the counts of stage {other.stage!r} to those of {self.stage!r}")
        if len(other.gt_occupied_by_class) != len(self.gt_occupied_by_class):
            raise ValueError(f"stage {self.stage!r}: cannot add counts of {len(other.gt_occupied_by_class)} classes "
                             f"to counts of {len(self.gt_occupied_by_class)}")
        return StageCounts(self.stage, *(_add(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)[1:]))

    @property
    def sites_kept(self) -> float:
        """``sites_after / sites_before`` (voxel or pixel density after dropping)."""
        return _ratio(self.sites_after, self.sites_before)

    @property
    def kept_of_occupied(self) -> float:
        return _ratio(self.kept, self.occupied)

    @property
    def kept_of_grid(self) -> float:
        """The BEV density: kept cells / all cells."""
        return _ratio(self.kept, self.grid_cells)

    @property
    def occupied_of_grid(self) -> float:
        return _ratio(self.occupied, self.grid_cells)

    @property
    def gt_dropped_fraction(self) -> float:
        """Occupied ground-truth cells that were dropped, as a fraction of the occupied ground-truth cells."""
        return _ratio(self.gt_dropped, self.gt_occupied)

    @property
    def gt_dropped_fraction_by_class(self) -> tuple[float, ...]:
        """:attr:`gt_dropped_fraction` per class, in label order (NaN for a class without occupied cells)."""
        return tuple(_ratio(d, o) for d, o in zip(self.gt_dropped_by_class, self.gt_occupied_by_class, strict=True))


def _add(a: int | tuple[int, ...], b: int | tuple[int, ...]) -> int | tuple[int, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a + b


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def stage_counts(
    stage: str,
    occupied: torch.Tensor,
    kept: torch.Tensor,
    sites_before: torch.Tensor | Sequence[int],
    sites_after: torch.Tensor | Sequence[int],
    gt_cells: torch.Tensor,
    class_cells: Sequence[torch.Tensor] = (),
) -> StageCounts:
    """Counts of one stage on one batch; ``occupied``, ``kept``, ``gt_cells`` (the cells in any box) and each of
    ``class_cells`` (the cells in a box of one class, per class in label order) bool ``[B, H, W]``."""
    for name, mask in (("kept", kept), ("ground-truth cells", gt_cells),
                       *((f"class {label}'s cells", cells) for label, cells in enumerate(class_cells))):
        if mask.shape != occupied.shape:
            raise ValueError(f"stage {stage!r}: occupied {tuple(occupied.shape)} and {name} {tuple(mask.shape)} "
                             "must be masks of one [B, H, W] grid")
    occupied, kept, gt_cells = occupied.cpu(), kept.cpu(), gt_cells.cpu()
    gt_occupied = gt_cells & occupied
    class_occupied = [cells.cpu() & occupied for cells in class_cells]
    return StageCounts(
        stage=stage,
        sites_before=int(torch.as_tensor(sites_before).sum()),
        sites_after=int(torch.as_tensor(sites_after).sum()),
        occupied=int(occupied.sum()),
        kept=int((kept & occupied).sum()),
        grid_cells=occupied.numel(),
        gt_occupied=int(gt_occupied.sum()),
        gt_dropped=int((gt_occupied & ~kept).sum()),
        gt_occupied_by_class=tuple(int(cells.sum()) for cells in class_occupied),
        gt_dropped_by_class=tuple(int((cells & ~kept).sum()) for cells in class_occupied),
    )


def record_counts(
    record: PruningRecord, gt_cells: torch.Tensor, class_cells: Sequence[torch.Tensor] = ()
) -> StageCounts:
    """:func:`stage_counts` of an Ada3D drop stage's record."""
    return stage_counts(record.stage, record.occupied, record.kept, record.sites_before, record.sites_after,
                        gt_cells, class_cells)


def dense_bev_counts(
    bev: torch.Tensor, gt_cells: torch.Tensor, class_cells: Sequence[torch.Tensor] = ()
) -> StageCounts:
    """Counts of the BEV map ``[B, C, H, W]`` of a model that drops nothing: occupied (any non-zero channel) =
    kept, the sites being the occupied pixels."""
    occupied = (bev != 0).any(dim=1)
    sites = occupied.flatten(1).sum(dim=1).tolist()
    return stage_counts("bev", occupied, occupied, sites, sites, gt_cells, class_cells)


def centres_with_features(
    stage_maps: Sequence[torch.Tensor], gt_boxes: Sequence[torch.Tensor], point_cloud_range: Sequence[float]
) -> tuple[list[int], int]:
    """How many ground-truth box centres hold features in each BEV backbone stage's output.

    A sparse BEV backbone computes only at its active pixels; where a stage's output is zero in every channel,
    the neck and head get nothing from that stage at that pixel (a car's centre often holds no LiDAR return).
    A dense backbone's outputs are non-zero nearly everywhere.

    Args:
        stage_maps: the backbone's output per stage, ``[B, C_i, H_i, W_i]``, each covering ``point_cloud_range``
            in x (W) and y (H).
        gt_boxes: per sample ``[M_b, 7+]`` LiDAR boxes, metres.
        point_cloud_range: ``(x0, y0, z0, x1, y1, z1)``.

    Returns:
        ``(seen, total)``: per stage, the boxes whose centre pixel has a non-zero feature; the boxes whose centre
        lies in the range.
    """
    x0, y0, _, x1, y1, _ = (float(v) for v in point_cloud_range)
    centres = [boxes[:, :2].cpu() for boxes in gt_boxes]
    seen, in_range = [], 0
    for stage in stage_maps:
        active = (stage != 0).any(dim=1).cpu()  # [B, H, W]
        height, width = active.shape[1:]
        grid = BevGrid(x0, y0, (x1 - x0) / width, (y1 - y0) / height, height, width)
        cells = [grid.cell_of(xy) for xy in centres]  # per sample (cells [M, 2], inside [M])
        seen.append(sum(int(active[b, c[inside, 0], c[inside, 1]].sum()) for b, (c, inside) in enumerate(cells)))
        in_range = sum(int(inside.sum()) for _, inside in cells)  # the same for every stage: one range
    return seen, in_range
