"""Matplotlib figures of a frame seen from above, and of where Ada3D drops voxels by range.

Bird's-eye panels use the ego view: +x (forward) points up, +y (left) to the left; the horizontal axis
is y (decreasing to the right), the vertical axis x, both in metres.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from ada3d.structures import box_corners
from ada3d.visualization.colors import (
    BACKGROUND_COLOR,
    DROPPED_COLOR,
    GT_BOX_COLOR,
    IMPORTANCE_COLORMAP,
    KEPT_COLOR,
    PRED_BOX_COLOR,
)
from ada3d.visualization.frame_view import DROPPED, KEPT, FrameView, GridGeometry, PruningStage

PANEL_INCHES = 5.5


def occupancy_counts(points: np.ndarray, grid: GridGeometry) -> np.ndarray:
    """Points per BEV cell: int64 ``[ny, nx]`` of ``grid``'s 2D cells (points outside the range ignored)."""
    bev = grid.bev
    cells, inside = bev.cells_of(points)
    return np.bincount(bev.flat_index(cells[inside]), minlength=int(np.prod(bev.shape))).reshape(bev.shape)


def bev_stage_status(view: FrameView, stage: PruningStage, grid: GridGeometry) -> tuple[np.ndarray, GridGeometry]:
    """Kept / dropped status of BEV cells at ``stage``.

    Cells are those of the coarser of the stage's grid and ``grid`` (a point-level stage: ``grid``), so
    fine 3D voxels are summarised on the display grid: a cell is kept where any of its voxels (or points)
    is kept, dropped where it has input but nothing kept.

    Returns:
        ``(status int8 [ny, nx]: KEPT, DROPPED or -1 for cells without input, its 2D grid)``.
    """
    if stage.is_point_level:
        xy, bev = view.points[:, :2], grid.bev
    else:
        xy = stage.grid.cell_centres(stage.coords)[:, :2]
        bev = stage.grid.bev if stage.grid.cell_size[0] >= grid.cell_size[0] else grid.bev
    cells, inside = bev.cells_of(xy)
    keys, kept = bev.flat_index(cells[inside]), stage.kept[inside]
    size = int(np.prod(bev.shape))
    has_input = np.bincount(keys, minlength=size) > 0
    has_kept = np.bincount(keys, weights=kept, minlength=size) > 0
    status = np.where(has_kept, KEPT, np.where(has_input, DROPPED, -1)).astype(np.int8)
    return status.reshape(bev.shape), bev


def _setup_axes(ax, grid: GridGeometry, title: str) -> None:
    x0, y0, _, x1, y1, _ = grid.point_cloud_range
    ax.set_facecolor(BACKGROUND_COLOR)
    ax.set_xlim(y1, y0)
    ax.set_ylim(x0, x1)
    ax.set_aspect("equal")
    ax.set_xlabel("y (m, left +)")
    ax.set_ylabel("x (m, forward +)")
    ax.set_title(title)


def _show_raster(ax, image: np.ndarray, grid: GridGeometry, **kwargs):
    """Draw ``[ny, nx(, 4)]`` cell values of ``grid`` (indexed [y, x]) in the ego-view axes."""
    x0, y0, _, x1, y1, _ = grid.point_cloud_range
    return ax.imshow(np.swapaxes(image, 0, 1), origin="lower", extent=(y0, y1, x0, x1), interpolation="nearest",
                     **kwargs)


def draw_boxes(ax, view: FrameView, show_gt: bool = True, show_pred: bool = True) -> None:
    """Box outlines (bottom faces) with a line from the centre to the front; predictions labelled."""
    groups = []
    if show_gt:
        groups.append((view.gt_boxes, GT_BOX_COLOR, False))
    if show_pred:
        groups.append((view.pred_boxes, PRED_BOX_COLOR, True))
    for boxes, color, labelled in groups:
        if not len(boxes):
            continue
        bottoms = box_corners(boxes.astype(np.float64))[:, :4, :2]  # [M, 4, (x, y)]
        for index, (box, corners) in enumerate(zip(boxes, bottoms)):
            ax.add_patch(Polygon(corners[:, ::-1], closed=True, fill=False, edgecolor=color, linewidth=1.2))
            front = corners[[0, 3]].mean(0)
            ax.plot([box[1], front[1]], [box[0], front[0]], color=color, linewidth=1.2)
            if labelled and view.label_text(index):
                ax.text(box[1], box[0] + box[3] / 2 + 0.5, view.label_text(index), color=color, fontsize=7,
                        ha="center", va="bottom", clip_on=True)


def bev_figure(view: FrameView, grid: GridGeometry, stage: int | str | None = None, show_gt: bool = True,
               show_pred: bool = True) -> Figure:
    """Bird's-eye panels: point occupancy, then (with a ``stage``) its importance map and kept mask.

    Args:
        view: the frame.
        grid: range and cell size of the occupancy panel (and of a point-level stage's mask).
        stage: index or name of the stage to show, or None for the occupancy panel alone.

    Returns:
        a figure with one panel per available map, boxes drawn on each; the panels' axes are labelled
        ``"occupancy"``, ``"importance"``, ``"kept"`` (``Axes.get_label()``).
    """
    panels = ["occupancy"]
    selected = None if stage is None else view.stage(stage)
    if selected is not None:
        panels += (["importance"] if selected.importance is not None else []) + ["kept"]
    figure = Figure(figsize=(PANEL_INCHES * len(panels), PANEL_INCHES), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        ax.set_label(panel)
        if panel == "occupancy":
            counts = occupancy_counts(view.points, grid)
            _setup_axes(ax, grid, f"{view.name}: points per {grid.cell_size[0]:g} m cell")
            image = _show_raster(ax, np.ma.masked_equal(counts, 0), grid, cmap="viridis",
                                 norm=LogNorm(vmin=1, vmax=max(2, counts.max())))
            figure.colorbar(image, ax=ax, shrink=0.8, label="points")
        elif panel == "importance":
            _setup_axes(ax, selected.importance_grid, f"'{selected.name}': importance")
            image = _show_raster(ax, selected.importance, selected.importance_grid, cmap=IMPORTANCE_COLORMAP)
            figure.colorbar(image, ax=ax, shrink=0.8, label="importance")
        else:
            status, status_grid = bev_stage_status(view, selected, grid)
            rgba = np.zeros((*status.shape, 4))
            rgba[status == KEPT] = (*KEPT_COLOR, 1.0)
            rgba[status == DROPPED] = (*DROPPED_COLOR, 1.0)
            kept, dropped = int((status == KEPT).sum()), int((status == DROPPED).sum())
            _setup_axes(ax, status_grid, f"'{selected.name}': kept {kept:,} / dropped {dropped:,} cells")
            _show_raster(ax, rgba, status_grid)
        draw_boxes(ax, view, show_gt, show_pred)
    return figure


def range_histogram(view: FrameView, stage: int | str, bin_size: float = 2.0) -> tuple[np.ndarray, ...]:
    """Kept and dropped voxels (points, for a point-level stage) per range bin.

    Range is the horizontal distance ``hypot(x, y)`` from the sensor of a voxel's centre (or a point).

    Returns:
        ``(edges [B + 1] metres from 0 in steps of bin_size, kept [B], dropped [B] counts)``.
    """
    selected = view.stage(stage)
    xy = view.points[:, :2] if selected.is_point_level else selected.grid.cell_centres(selected.coords)[:, :2]
    distance = np.hypot(xy[:, 0], xy[:, 1])
    edges = np.arange(0.0, max(float(distance.max(initial=0.0)), bin_size) + bin_size, bin_size)
    return edges, np.histogram(distance[selected.kept], edges)[0], np.histogram(distance[~selected.kept], edges)[0]


def density_vs_range_figure(view: FrameView, stage: int | str, bin_size: float = 2.0) -> Figure:
    """:func:`range_histogram` as densities (per metre of range), with the kept fraction on the right axis."""
    selected = view.stage(stage)
    unit = "points" if selected.is_point_level else "voxels"
    edges, kept_counts, dropped_counts = range_histogram(view, stage, bin_size)
    figure = Figure(figsize=(7, 4), layout="constrained")
    ax = figure.subplots()
    ax.stairs(kept_counts / bin_size, edges, color=KEPT_COLOR, linewidth=1.8, label=f"kept ({kept_counts.sum():,})")
    ax.stairs(dropped_counts / bin_size, edges, color=DROPPED_COLOR, linewidth=1.8,
              label=f"dropped ({dropped_counts.sum():,})")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("range from the sensor (m)")
    ax.set_ylabel(f"{unit} per metre of range")
    ax.set_title(f"{view.name}: '{selected.name}'")
    total = kept_counts + dropped_counts
    fraction_axis = ax.twinx()
    centres = (edges[:-1] + edges[1:]) / 2
    fraction_axis.plot(centres[total > 0], kept_counts[total > 0] / total[total > 0], "k--", linewidth=1,
                       label="kept fraction")
    fraction_axis.set_ylim(0, 1.05)
    fraction_axis.set_ylabel("kept fraction")
    handles = ax.get_legend_handles_labels()[0] + fraction_axis.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper right")
    return figure
