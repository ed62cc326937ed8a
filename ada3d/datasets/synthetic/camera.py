"""The virtual camera: KITTI's left colour camera (``P2``) with the calibration of a real recording.

The matrices are those of KITTI object frame 000008 (recording day 2011-09-26). Each synthetic frame
gets the scanner-to-camera transform rotated by a small random angle (0.1 deg standard deviation per
axis) and shifted by a few millimetres, so calibration files differ from frame to frame as they do
between KITTI's recording days, while every file stays exactly consistent with its own labels.
"""

from __future__ import annotations

import numpy as np

from ada3d.datasets.kitti_files import KittiCalib

IMAGE_SHAPE = (375, 1242)  # (height, width) in pixels

_KITTI_000008 = {
    "P0": [721.5377, 0.0, 609.5593, 0.0, 0.0, 721.5377, 172.854, 0.0, 0.0, 0.0, 1.0, 0.0],
    "P1": [721.5377, 0.0, 609.5593, -387.5744, 0.0, 721.5377, 172.854, 0.0, 0.0, 0.0, 1.0, 0.0],
    "P2": [721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791, 0.0, 0.0, 1.0, 0.002745884],
    "P3": [721.5377, 0.0, 609.5593, -339.5242, 0.0, 721.5377, 172.854, 2.199936, 0.0, 0.0, 1.0, 0.002729905],
    "R0_rect": [0.9999239, 0.00983776, -0.007445048, -0.009869795, 0.9999421, -0.004278459, 0.007402527,
                0.004351614, 0.9999631],
    "Tr_velo_to_cam": [0.007533745, -0.9999714, -0.000616602, -0.004069766, 0.01480249, 0.0007280733, -0.9998902,
                       -0.07631618, 0.9998621, 0.00752379, 0.01480755, -0.2717806],
    "Tr_imu_to_velo": [0.9999976, 0.0007553071, -0.002035826, -0.8086759, -0.0007854027, 0.9998898, -0.01482298,
                       0.3195559, 0.002024406, 0.01482454, 0.9998881, -0.7997231],
}


def kitti_reference_calib() -> KittiCalib:
    """The unperturbed calibration of KITTI frame 000008."""
    shapes = {"R0_rect": (3, 3)}
    matrices = {key: np.array(values).reshape(shapes.get(key, (3, 4))) for key, values in _KITTI_000008.items()}
    return KittiCalib(**matrices)


def perturbed_calib(rng: np.random.Generator, angle_std_deg: float = 0.1, shift_std: float = 0.005) -> KittiCalib:
    """The reference calibration with ``Tr_velo_to_cam`` rotated and shifted by small random amounts."""
    calib = kitti_reference_calib()
    rx, ry, rz = np.radians(rng.normal(0.0, angle_std_deg, 3))
    rotation = _rotation_z(rz) @ _rotation_y(ry) @ _rotation_x(rx)
    transform = calib.Tr_velo_to_cam.copy()
    transform[:, :3] = rotation @ transform[:, :3]
    transform[:, 3] = rotation @ transform[:, 3] + rng.normal(0.0, shift_std, 3)
    calib.Tr_velo_to_cam = transform
    return calib


def _rotation_x(a: float) -> np.ndarray:
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _rotation_y(a: float) -> np.ndarray:
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _rotation_z(a: float) -> np.ndarray:
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
