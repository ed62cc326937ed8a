"""The matplotlib figures: counts against brute force, and colours read back from the drawn pixels."""

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from ada3d.visualization import DROPPED, KEPT, GridGeometry, PruningStage
from ada3d.visualization.bev_plots import (
    bev_figure,
    bev_stage_status,
    density_vs_range_figure,
    occupancy_counts,
    range_histogram,
)
from ada3d.visualization.colors import DROPPED_COLOR, GT_BOX_COLOR, IMPORTANCE_COLORMAP, KEPT_COLOR
from tests.ada3d.visualization.frames import KEEP_X_BELOW, RANGE, bev_stage_frame, lattice_frame, lattice_points

GRID = GridGeometry((2.0, 2.0), RANGE)  # one lattice point at the centre of every cell


def _pixels(figure) -> np.ndarray:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].astype(int)


def _colour_at(figure, image, ax, x, y) -> np.ndarray:
    """Colour of the pixel that shows LiDAR point (x, y) in an ego-view panel."""
    col, row_from_bottom = ax.transData.transform((y, x))
    return image[image.shape[0] - int(round(row_from_bottom)), int(round(col))]


def _rgb255(color) -> np.ndarray:
    return np.round(255 * np.asarray(color)).astype(int)


def _panel(figure, label):
    return next(ax for ax in figure.axes if ax.get_label() == label)


def test_occupancy_counts_points_per_cell():
    points = np.concatenate([lattice_points(), lattice_points()[:5], [[-1.0, 0.0, 0.0, 0.0]]]).astype(np.float32)
    counts = occupancy_counts(points, GRID)
    assert counts.shape == (20, 20) and counts.sum() == 405
    assert counts[0, 0] == 2 and counts[0, 1] == 1  # (x=1, y=-19) twice; (x=3, y=-19) once
    expected = np.zeros((20, 20), int)
    rows, cols = ((points[:-1, 1] + 20) // 2).astype(int), (points[:-1, 0] // 2).astype(int)  # the last is outside
    np.add.at(expected, (rows, cols), 1)
    np.testing.assert_array_equal(counts, expected)


def test_bev_status_of_point_and_voxel_stages():
    view = lattice_frame()
    status, grid = bev_stage_status(view, view.stages[0], GRID)
    assert grid == GRID
    centres_x = GRID.cell_centres(np.argwhere(np.ones(GRID.shape)))[:, 0].reshape(GRID.shape)
    np.testing.assert_array_equal(status, np.where(centres_x < KEEP_X_BELOW, KEPT, DROPPED))

    fine = GridGeometry((1.0, 1.0, 1.0), RANGE)  # finer than the display grid: summarised on it
    coords = np.array([[1, 20, 2], [2, 20, 2], [1, 20, 6]])  # two voxels in one 2 m column, one in another
    voxel_stage = PruningStage("3D", kept=np.array([False, True, False]), coords=coords, grid=fine)
    status, grid = bev_stage_status(view, voxel_stage, GRID)
    assert grid == GRID
    assert status[10, 1] == KEPT and status[10, 3] == DROPPED and (status >= 0).sum() == 2


def test_kept_panel_shows_kept_and_dropped_cells_where_the_mask_says():
    view = lattice_frame()
    figure = bev_figure(view, GRID, stage=0)
    image = _pixels(figure)
    ax = _panel(figure, "kept")
    for x, y, kept in zip(view.points[:, 0], view.points[:, 1], view.stages[0].kept):
        expected = KEPT_COLOR if kept else DROPPED_COLOR
        np.testing.assert_allclose(_colour_at(figure, image, ax, x, y), _rgb255(expected), atol=2)


def test_importance_panel_is_oriented_like_the_map():
    view, _ = bev_stage_frame()
    importance_grid = GridGeometry((4.0, 4.0), RANGE)
    importance = np.zeros(importance_grid.shape)
    importance[2, 7] = 1.0  # x in [28, 32), y in [-12, -8)
    importance[8, 1] = 0.5  # x in [4, 8), y in [12, 16)
    view.stages[0].importance, view.stages[0].importance_grid = importance, importance_grid
    figure = bev_figure(view, GRID, stage=0)
    image = _pixels(figure)
    ax = _panel(figure, "importance")
    colormap = matplotlib.colormaps[IMPORTANCE_COLORMAP]
    for (x, y), value in [((30, -10), 1.0), ((6, 14), 0.5), ((30, 10), 0.0)]:
        np.testing.assert_allclose(_colour_at(figure, image, ax, x, y), _rgb255(colormap(value)[:3]), atol=2)


def test_boxes_are_drawn_on_every_panel():
    box = np.array([[10.0, 5.0, -1.0, 8.0, 4.0, 1.5, 0.0]])  # bottom face x in [6, 14], y in [3, 7]
    view = lattice_frame(gt_boxes=box)
    figure = bev_figure(view, GRID, stage=0)
    image = _pixels(figure)
    for label in ("occupancy", "kept"):
        ax = _panel(figure, label)
        for x, y in [(14, 4.0), (6, 6.0), (8, 3), (12, 7)]:  # on the edges, away from lattice points
            np.testing.assert_allclose(_colour_at(figure, image, ax, x, y), _rgb255(GT_BOX_COLOR), atol=40)


def test_occupancy_only_without_a_stage():
    figure = bev_figure(lattice_frame(), GRID)
    assert [ax.get_label() for ax in figure.axes if ax.get_label() in ("occupancy", "importance", "kept")] == [
        "occupancy"]


@pytest.mark.parametrize("level", ["point", "cell"])
def test_range_histogram(level):
    if level == "point":
        view = lattice_frame()
        xy, kept = view.points[:, :2], view.stages[0].kept
    else:
        view, stage = bev_stage_frame()
        xy, kept = stage.grid.cell_centres(stage.coords), stage.kept
    edges, kept_counts, dropped_counts = range_histogram(view, 0, bin_size=5.0)
    distance = np.hypot(xy[:, 0], xy[:, 1])
    assert edges[0] == 0 and edges[-1] >= distance.max() and np.allclose(np.diff(edges), 5.0)
    assert kept_counts.sum() == kept.sum() and dropped_counts.sum() == (~kept).sum()
    first_bin = distance < 5
    assert kept_counts[0] == (kept & first_bin).sum() and dropped_counts[0] == (~kept & first_bin).sum()


def test_density_figure_draws_kept_and_dropped():
    figure = density_vs_range_figure(lattice_frame(), 0)
    labels = figure.axes[0].get_legend_handles_labels()[1]
    assert labels == ["kept (200)", "dropped (200)"]
