"""Synthetic frames with known masks for the visualisation tests."""

from __future__ import annotations

import numpy as np

from ada3d.visualization import FrameView, GridGeometry, PruningStage

# a 40 x 40 m square in front of the sensor; points on a 2 m lattice at odd coordinates, on the ground
RANGE = (0.0, -20.0, -3.0, 40.0, 20.0, 1.0)
GROUND_Z = -1.0
KEEP_X_BELOW = 20.0


def lattice_points() -> np.ndarray:
    """``[400, 4]`` points at x, y in {odd numbers} inside :data:`RANGE`, z = GROUND_Z, intensity x / 40."""
    x, y = np.meshgrid(np.arange(1.0, 40.0, 2.0), np.arange(-19.0, 20.0, 2.0), indexing="ij")
    x, y = x.ravel(), y.ravel()
    return np.stack([x, y, np.full_like(x, GROUND_Z), x / 40], 1).astype(np.float32)


def lattice_frame(**fields) -> FrameView:
    """:func:`lattice_points` with one point-level stage that keeps the points with x < 20 m."""
    points = lattice_points()
    stage = PruningStage("keep x < 20", kept=points[:, 0] < KEEP_X_BELOW)
    return FrameView(points=points, name="lattice", stages=[stage], **fields)


def bev_stage_frame() -> tuple[FrameView, PruningStage]:
    """:func:`lattice_points` with a BEV stage on 4 m cells: cells with y > 0 are kept, cells with y < 0
    dropped, and cells with x >= 32 are not in the stage at all."""
    points = lattice_points()
    grid = GridGeometry((4.0, 4.0), RANGE)
    rows, cols = np.meshgrid(np.arange(grid.shape[0]), np.arange(grid.shape[1]), indexing="ij")
    active = cols.ravel() < 8  # x < 32 m
    coords = np.stack([rows.ravel(), cols.ravel()], 1)[active]
    kept = grid.cell_centres(coords)[:, 1] > 0
    stage = PruningStage("bev", kept=kept, coords=coords, grid=grid)
    return FrameView(points=points, name="lattice", stages=[stage]), stage
