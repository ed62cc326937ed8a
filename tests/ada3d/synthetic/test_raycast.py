"""The ray caster against shapes whose hits can be computed by hand."""

import numpy as np
import pytest

from ada3d.datasets.synthetic import SensorConfig
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.primitives import PrimitiveSet
from ada3d.datasets.synthetic.raycast import GROUND, NO_HIT, cast_rays
from ada3d.datasets.synthetic.sensor import direction_table, ego_mask

SENSOR = SensorConfig()
FLAT = GroundModel.create(1.73)
NO_GROUND = GroundModel.create(1000.0)  # far below every ray's reach


def _column(azimuth_deg: float) -> int:
    return int(round(azimuth_deg / SENSOR.azimuth_step_deg)) % SENSOR.num_columns


def test_flat_ground_range_is_height_over_sine():
    hits = cast_rays(SENSOR, FLAT, PrimitiveSet().to_array(), 0, seed=0)
    elevation = SENSOR.elevations()
    reaches = 1.73 / -np.sin(np.minimum(elevation, -1e-9)) <= SENSOR.max_range
    blocked = ego_mask(SENSOR)
    on_ground = reaches[:, None] & ~blocked
    assert (hits.hit[on_ground] == GROUND).all()
    assert (hits.hit[~on_ground] == NO_HIT).all()
    expected = np.broadcast_to((1.73 / -np.sin(np.minimum(elevation, -1e-9)))[:, None], hits.range.shape)
    np.testing.assert_allclose(hits.range[on_ground], expected[on_ground], rtol=1e-5)
    points = direction_table(SENSOR) * hits.range[..., None]
    np.testing.assert_allclose(points[on_ground][:, 2], -1.73, atol=1e-4)


def test_box_cylinder_and_ellipsoid_ranges():
    shapes = PrimitiveSet()
    shapes.add_box((10.0, 0.0, -1.0, 2.0, 4.0, 2.0, 0.0), 0.3)  # front face at x = 9, z in [-1, 1]
    shapes.add_cylinder(0.0, 10.0, -1.0, 1.0, 0.5, 0.3)  # nearest surface at y = 9.5
    shapes.add_ellipsoid(-10.0, 0.0, 0.0, 1.0, 2.0, 0.3)  # nearest point x = -9
    hits = cast_rays(SENSOR, NO_GROUND, shapes.to_array(), 0, seed=0)
    elevation = SENSOR.elevations()
    for azimuth, index, near in ((0.0, 0, 9.0), (90.0, 1, 9.5)):
        column = _column(azimuth)
        beams = np.flatnonzero(np.abs(near * np.tan(elevation)) <= 1.0)
        assert (hits.hit[beams, column] == index).all()
        np.testing.assert_allclose(hits.range[beams, column], near / np.cos(elevation[beams]), rtol=1e-6)
    column = _column(180.0)
    for beam in np.flatnonzero(np.abs(10 * np.tan(elevation)) < 1.5):
        # ray z = u tan(e) meets ((u - 10) / 1)^2 + (z / 2)^2 = 1 at the smaller root
        t = np.tan(elevation[beam])
        a, b, c = 1 + t * t / 4, -20.0, 99.0
        u = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)
        assert hits.hit[beam, column] == 2
        assert hits.range[beam, column] == pytest.approx(u / np.cos(elevation[beam]), rel=1e-5)


def test_object_behind_a_wall_is_counted_but_not_hit():
    shapes = PrimitiveSet()
    shapes.add_box((8.0, 0.0, -1.73, 0.3, 10.0, 4.0, 0.0), 0.3)  # wall across the road ahead
    shapes.add_box((14.0, 0.0, -1.73, 4.0, 1.7, 1.5, 0.1), 0.3, obj=0)  # a car behind it
    hits = cast_rays(SENSOR, FLAT, shapes.to_array(), 1, seed=0)
    assert hits.rays_on_object[0] > 500
    assert not (hits.hit == 1).any()


def test_foliage_lets_rays_through_with_beer_lambert_odds():
    density, depth = 0.5, 2.0
    shapes = PrimitiveSet()
    shapes.add_box((11.0, 0.0, -1.0, depth, 20.0, 2.0, 0.0), 0.4, density=density)  # x in [10, 12]
    shapes.add_box((20.0, 0.0, -1.0, 1.0, 40.0, 2.0, 0.0), 0.3)  # wall behind it
    hits = cast_rays(SENSOR, NO_GROUND, shapes.to_array(), 0, seed=3)
    elevation = SENSOR.elevations()
    beams = np.flatnonzero(np.abs(20 * np.tan(elevation)) < 0.9)
    azimuth = np.degrees(SENSOR.azimuths())
    columns = np.flatnonzero((azimuth < 20) | (azimuth > 340))
    reached_wall = (hits.hit[np.ix_(beams, columns)] == 1).mean()
    # the slab is crossed at a slant: the path length is depth / (cos(azimuth) cos(elevation))
    path = depth / (np.cos(np.radians(azimuth[columns]))[None] * np.cos(elevation[beams])[:, None])
    assert reached_wall == pytest.approx(np.exp(-density * path).mean(), abs=0.02)
    in_foliage = hits.range[np.ix_(beams, columns)][hits.hit[np.ix_(beams, columns)] == 0]
    assert in_foliage.size and (in_foliage > 10.0).all()


def test_cast_is_deterministic_per_seed():
    shapes = PrimitiveSet()
    shapes.add_ellipsoid(6.0, 3.0, 0.5, 2.0, 2.0, 0.4, density=1.0)
    first = cast_rays(SENSOR, FLAT, shapes.to_array(), 0, seed=11)
    again = cast_rays(SENSOR, FLAT, shapes.to_array(), 0, seed=11)
    other = cast_rays(SENSOR, FLAT, shapes.to_array(), 0, seed=12)
    np.testing.assert_array_equal(first.range, again.range)
    assert not np.array_equal(first.range, other.range)


def test_bad_object_index_is_rejected():
    shapes = PrimitiveSet()
    shapes.add_box((5.0, 0.0, -1.0, 1.0, 1.0, 1.0, 0.0), 0.3, obj=3)
    with pytest.raises(ValueError, match="object indices"):
        cast_rays(SENSOR, FLAT, shapes.to_array(), 2, seed=0)
