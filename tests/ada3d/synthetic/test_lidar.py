"""The simulated point clouds: KITTI's value ranges, ground level and return model."""

import numpy as np

from ada3d.datasets.synthetic.raycast import GROUND


def test_point_clouds_have_kitti_layout_and_ranges(frames):
    for frame in frames:
        points = frame.points
        assert points.dtype == np.float32 and points.shape[1] == 4
        assert 90_000 < len(points) < 140_000  # KITTI: 113k-127k on the real scans
        intensity = points[:, 3]
        assert intensity.min() >= 0.0 and intensity.max() <= 1.0
        np.testing.assert_allclose(intensity * 100, np.round(intensity * 100), atol=1e-3)  # 0.01 steps
        distance = np.linalg.norm(points[:, :3], axis=1)
        assert distance.min() > 1.8 and distance.max() <= 80.0 + 0.1  # min range 2 m (+ noise); KITTI stops at 80 m


def test_ground_points_lie_near_minus_1_73(frames):
    for frame in frames:
        near_ground = (frame.scan.primitive == GROUND) & (np.hypot(frame.points[:, 0], frame.points[:, 1]) < 10)
        z = frame.points[near_ground, 2]
        assert len(z) > 10_000
        assert abs(np.median(z) + 1.73) < 0.12  # sidewalks are 0.1-0.2 m higher; the road is tilted ~1 %


def test_far_and_glossy_returns_are_weaker(frames):
    points = np.concatenate([frame.points for frame in frames])
    distance = np.linalg.norm(points[:, :3], axis=1)
    near, far = points[distance < 20, 3], points[distance > 50, 3]
    assert (far == 0).mean() > 0.5 > (near == 0).mean()  # as in KITTI, most points beyond 45 m read 0
    on_vehicles = np.concatenate([frame.points[frame.scan.object_index >= 0, 3] for frame in frames])
    assert (on_vehicles == 0).mean() > (near == 0).mean()
