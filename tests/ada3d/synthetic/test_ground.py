"""Terrain ray casting: undulating ground, curbs and sidewalks."""

import numpy as np
import pytest

from ada3d.datasets.synthetic import SensorConfig
from ada3d.datasets.synthetic.ground import GroundModel, cast_ground
from ada3d.datasets.synthetic.sensor import direction_table


def _cast_all(ground, directions, t_max=120.0):
    linear, waves, ripples, raised = ground.packed()
    return np.array([cast_ground(*d, t_max, linear, waves, ripples, raised) for d in directions])


def test_hits_lie_on_an_undulating_terrain():
    rng = np.random.default_rng(0)
    ground = GroundModel.create(1.73, slope=(0.011, -0.006),
                                waves=[(0.25, 0.06, 0.02, 0.3), (0.15, -0.01, 0.07, 1.0)],
                                ripples=[(0.02, 0.6, 0.3, 0.0), (0.015, -0.2, 0.5, 2.0)])
    assert ground.smooth_height(0.0, 0.0) == pytest.approx(-1.73)
    directions = direction_table(SensorConfig()).reshape(-1, 3)
    directions = directions[rng.choice(len(directions), 3000, replace=False)]
    hits = _cast_all(ground, directions)
    found = np.isfinite(hits[:, 0])
    assert found.sum() > 1500
    points = directions[found] * hits[found, :1]
    np.testing.assert_allclose(points[:, 2], ground.height(points[:, 0], points[:, 1]), atol=0.01)
    assert ((hits[found, 1] > 0) & (hits[found, 1] <= 1)).all()


def test_curb_face_and_sidewalk_top():
    # a 15 cm sidewalk from y = 5 to y = 8 along the x axis, flat terrain 1.73 m below the scanner
    ground = GroundModel.create(1.73, raised=[(0.0, 6.5, 50.0, 1.5, 1.0, 0.0, 0.15)])
    left = np.array([0.0, 1.0, 0.0])
    directions = []
    for elevation in np.radians([-10.0, -15.0, -19.0, -25.0]):
        directions.append(np.cos(elevation) * left + np.array([0.0, 0.0, np.sin(elevation)]))
    hits = _cast_all(ground, np.array(directions))
    points = np.array(directions) * hits[:, :1]
    # -10 deg: reaches y = 5 at z = -0.88, over the 1.58 m sidewalk level: lands on the top at y = 8.97 > 8,
    # so it flies over the far edge and hits the terrain beyond
    assert points[0, 1] == pytest.approx(1.73 / np.tan(np.radians(10.0)), rel=1e-3)
    assert points[0, 2] == pytest.approx(-1.73, abs=1e-3)
    # -15 deg: lands on the sidewalk top (z = -1.58) at y = 5.90
    assert points[1, 2] == pytest.approx(-1.58, abs=1e-3) and 5.0 < points[1, 1] < 8.0
    # -19 deg: at y = 5 it is at z = -1.72, between terrain and sidewalk top: it hits the curb face
    assert points[2, 1] == pytest.approx(5.0, abs=1e-6) and -1.73 < points[2, 2] < -1.58
    assert hits[2, 1] == pytest.approx(np.cos(np.radians(19.0)), rel=1e-6)
    # -25 deg: hits the road before the curb
    assert points[3, 1] < 5.0 and points[3, 2] == pytest.approx(-1.73, abs=1e-3)


def test_rays_that_climb_never_hit():
    ground = GroundModel.create(1.73, slope=(0.01, 0.0))
    linear, waves, ripples, raised = ground.packed()
    assert cast_ground(1.0, 0.0, 0.0, 120.0, linear, waves, ripples, raised)[0] == np.inf
    assert cast_ground(0.0, 1.0, 0.0, 120.0, linear, waves, ripples, raised)[0] == np.inf
