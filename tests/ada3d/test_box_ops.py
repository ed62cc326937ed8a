import numpy as np
import pytest
import torch

from ada3d.structures import box_corners, points_in_boxes


@pytest.mark.parametrize("as_torch", [False, True])
def test_corners_of_rotated_box(as_torch):
    box = np.array([[1.0, 2.0, -1.0, 4.0, 2.0, 1.5, np.pi / 2]], dtype=np.float32)
    corners = box_corners(torch.from_numpy(box) if as_torch else box)
    corners = np.asarray(corners)[0]
    # yaw 90 deg: the length runs along +y, the width along -x
    np.testing.assert_allclose(corners[0], [0.0, 4.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(corners[2], [2.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(corners[4:, 2], 0.5, atol=1e-6)
    np.testing.assert_allclose(corners.mean(0), [1.0, 2.0, -0.25], atol=1e-6)


@pytest.mark.parametrize("as_torch", [False, True])
def test_points_in_boxes_of_shrunken_corners_and_far_points(as_torch):
    rng = np.random.default_rng(0)
    centres = np.stack([np.arange(5) * 20.0, rng.normal(size=5), rng.normal(size=5)], 1)  # boxes far apart
    boxes = np.concatenate([centres, rng.uniform(0.5, 4, (5, 3)), rng.uniform(-3, 3, (5, 1))], 1)
    corners = box_corners(boxes)  # [5, 8, 3]
    middles = boxes[:, :3] + np.array([0, 0, 0.5]) * boxes[:, 5:6]
    near_corners = (corners * 0.99 + middles[:, None] * 0.01).reshape(-1, 3)
    beyond_corners = (corners * 1.05 - middles[:, None] * 0.05).reshape(-1, 3)
    points = np.concatenate([near_corners, middles, beyond_corners], 0)
    if as_torch:
        points, boxes = torch.from_numpy(points), torch.from_numpy(boxes)
    inside = np.asarray(points_in_boxes(points, boxes))
    eye = np.eye(5, dtype=bool)
    expected = np.concatenate([np.repeat(eye, 8, 0), eye, np.zeros((40, 5), bool)], 0)
    np.testing.assert_array_equal(inside, expected)


def _random_scene(seed, num_points=20000, num_boxes=40):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-20, 20, (num_points, 4)).astype(np.float32)
    points[:, 2] = rng.uniform(-2, 2, num_points)
    boxes = np.concatenate(
        [rng.uniform(-15, 15, (num_boxes, 2)), rng.uniform(-1.5, 0, (num_boxes, 1)),
         rng.uniform(0.5, 5, (num_boxes, 3)), rng.uniform(-4, 4, (num_boxes, 1))], axis=1
    )
    return points, boxes


@pytest.mark.parametrize("seed", [0, 1])
def test_compiled_points_in_boxes_equals_the_vectorised_test(seed):
    # numpy inputs run a compiled loop with an early bounding-circle rejection; it must accept exactly the
    # points the vectorised float64 test (the torch path) accepts, including points on the faces
    points, boxes = _random_scene(seed)
    corners = box_corners(boxes)
    points = np.concatenate([points, np.pad(corners.reshape(-1, 3), ((0, 0), (0, 1))).astype(np.float32)])
    expected = points_in_boxes(torch.from_numpy(points.astype(np.float64)), torch.from_numpy(boxes)).numpy()
    got = points_in_boxes(points, boxes)
    assert got.dtype == bool and got.shape == (len(points), len(boxes))
    assert expected.sum() > 1000
    np.testing.assert_array_equal(got, expected)
