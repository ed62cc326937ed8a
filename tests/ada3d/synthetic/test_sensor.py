import numpy as np
import pytest

from ada3d.datasets.synthetic import SensorConfig, hdl64e_elevations_deg
from ada3d.datasets.synthetic.sensor import direction_table, ego_mask


def test_hdl64e_elevation_table():
    table = hdl64e_elevations_deg()
    assert table.shape == (64,)
    assert table[0] == pytest.approx(2.0) and table[-1] == pytest.approx(-24.333, abs=1e-3)
    np.testing.assert_allclose(np.diff(table[:32]), -1 / 3)  # upper block: 1/3 deg steps
    np.testing.assert_allclose(np.diff(table[32:]), -1 / 2)  # lower block: 1/2 deg steps
    assert table[31] == pytest.approx(-8.333, abs=1e-3) and table[32] == pytest.approx(-8.833, abs=1e-3)


def test_default_scan_geometry_matches_kitti():
    sensor = SensorConfig()
    assert sensor.num_beams == 64
    assert sensor.num_columns == 2160  # the real scans hold up to 2,157 points per ring
    directions = direction_table(sensor)
    assert directions.shape == (64, 2160, 3)
    np.testing.assert_allclose(np.linalg.norm(directions, axis=-1), 1.0)
    np.testing.assert_allclose(np.degrees(np.arcsin(directions[:, 0, 2])), hdl64e_elevations_deg())


def test_points_lie_on_their_laser(frames):
    for frame in frames[:3]:
        points, ring = frame.points, frame.scan.ring
        elevation = np.degrees(np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1])))
        # range noise moves a point along its ray only: its elevation is the laser's
        np.testing.assert_allclose(elevation, hdl64e_elevations_deg()[ring], atol=1e-3)
        assert np.all(np.diff(ring.astype(np.int64)) >= 0)  # stored ring after ring, like KITTI


def test_recording_car_hides_the_low_lasers_ahead_and_behind_only():
    # in the real scans the lowest laser loses about +-30 deg ahead and +-55 deg behind, the eighth-lowest
    # about +-25 deg behind only, the lowest 19 a few degrees around 285 deg (a roof mount), and no laser
    # loses anything else beside the car
    mask = ego_mask(SensorConfig())
    azimuth = np.degrees(SensorConfig().azimuths())
    ahead = (azimuth < 25) | (azimuth > 335)
    behind = np.abs(azimuth - 180) < 25
    beside = (np.abs(azimuth - 90) < 30) | (np.abs(azimuth - 255) < 15)
    assert mask[-1, ahead].all() and mask[-1, behind].all() and not mask[-1, beside].any()
    assert mask[-9, behind].all() and mask[-9, ahead].mean() < 0.05 and not mask[-9, beside].any()
    assert mask[45:, np.abs(azimuth - 285) < 3].all()
    assert not mask[:40].any()


def test_sensor_config_rejects_bad_values():
    with pytest.raises(ValueError, match="decreasing"):
        SensorConfig(elevations_deg=(1.0, 2.0))
    with pytest.raises(ValueError, match="min_range"):
        SensorConfig(min_range=5.0, max_range=1.0)
