"""The simulated spinning LiDAR: a Velodyne HDL-64E as mounted on the KITTI recording car.

Beam layout (HDL-64E S2 user manual): 64 lasers in two blocks of 32. The upper block covers
+2.0 deg to -8.33 deg in 1/3 deg steps, the lower block -8.83 deg to -24.33 deg in 1/2 deg steps.
KITTI's scans were taken at 10 Hz; a full revolution then has about 2,160 firings per laser (the real
scans hold up to 2,157 points per ring), an azimuth step of about 1/6 deg, so about 138k rays per
revolution of which about 120k return a point.

Rays are indexed ``(beam, column)``: beam 0 is the highest laser, column ``c`` points at azimuth
``c * azimuth_step`` (counter-clockwise from +x, the driving direction). Points are written in this
order, ring after ring from the top, as KITTI's ``.bin`` files are.

The KITTI car itself hides the lowest beams towards its bonnet and boot; :attr:`SensorConfig.ego_boxes`
holds those body parts (sensor frame, metres) and :func:`ego_mask` marks the rays they block.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np


def hdl64e_elevations_deg() -> np.ndarray:
    """``[64]`` nominal elevation of each HDL-64E laser in degrees, from the highest to the lowest."""
    upper = 2.0 - np.arange(32) / 3.0
    lower = -8.0 - 5.0 / 6.0 - np.arange(32) / 2.0
    return np.concatenate([upper, lower])


def _panel(azimuth_deg: float, distance: float, width: float, top: float) -> tuple[float, ...]:
    """A thin upright panel facing the scanner (a mount or antenna on the roof), as a LiDAR box."""
    azimuth = np.radians(azimuth_deg)
    return (distance * np.cos(azimuth), distance * np.sin(azimuth), -1.6, 0.04, width, top + 1.6, azimuth)


# Body of the KITTI recording car (VW Passat B6 wagon) as seen from the roof-mounted scanner: bonnet,
# roof and boot, and three mounts on the roof, as boxes (x, y, z, l, w, h, yaw) in the sensor frame
# (z = 0 at the scanner, ground at -1.73 m). Sized so the low rings lose the azimuth sectors they lose in
# every real scan: the lowest laser about +-30 deg ahead and +-55 deg behind, the eighth-lowest about
# +-25 deg behind; the lowest 19 lasers about 280-290 deg (right, behind the scanner), lasers 45-55 part
# of 150-170 and 190-210 deg; the upper 40 lasers nothing.
KITTI_EGO_BOXES = (
    (1.10, 0.0, -1.60, 1.80, 1.80, 0.79, 0.0),  # bonnet, top 0.92 m above ground
    (-0.25, 0.0, -1.60, 0.90, 1.44, 1.20, 0.0),  # roof around the scanner mount, 1.33 m above ground
    (-1.55, 0.0, -1.60, 1.70, 1.80, 0.81, 0.0),  # boot, 0.94 m above ground
    _panel(285.0, 1.0, 0.2, -0.26),
    _panel(158.0, 1.3, 0.15, -0.34),
    _panel(202.0, 1.3, 0.15, -0.34),
)


@dataclass(frozen=True)
class SensorConfig:
    """Everything about the scanner that shapes a scan.

    Attributes:
        elevations_deg: per-laser elevation (degrees), highest first.
        azimuth_step_deg: angle between two firings of one laser (degrees).
        height: scanner height above the ground under it (metres); the ground lies near ``z = -height``.
        min_range / max_range: closest and farthest return the scanner measures (metres; the HDL-64E
            reaches 120 m on bright targets).
        output_range: points farther than this are not written (metres; KITTI's scans stop at 80.0 m,
            every one of the real frames has points right up to that range and none beyond); None keeps all.
        range_noise: standard deviation of the range error (metres).
        dropout: probability that a return is lost whatever the surface.
        detection_range_grey: range (metres) at which a Lambertian surface of reflectivity 0.3 hit
            head-on is detected half the time; the received power falls as ``reflectivity * cos / r^2``,
            so dark or grazing surfaces vanish sooner.
        intensity_falloff_range: range (metres) where the reported intensity has fallen to half (the
            real scans report near-zero intensity beyond about 45 m).
        ego_boxes: body parts of the recording car; rays that hit them return nothing.
    """

    elevations_deg: tuple[float, ...] = tuple(hdl64e_elevations_deg().tolist())
    azimuth_step_deg: float = 360.0 / 2160
    height: float = 1.73
    min_range: float = 2.0
    max_range: float = 120.0
    output_range: float | None = 80.0
    range_noise: float = 0.02
    dropout: float = 0.02
    detection_range_grey: float = 90.0
    intensity_falloff_range: float = 36.0
    ego_boxes: tuple[tuple[float, ...], ...] = KITTI_EGO_BOXES

    def __post_init__(self):
        elevations = np.asarray(self.elevations_deg)
        if elevations.ndim != 1 or len(elevations) == 0 or np.any(np.diff(elevations) >= 0):
            raise ValueError(f"elevations_deg must be strictly decreasing (highest laser first), got {elevations}")
        if not 0.01 <= self.azimuth_step_deg <= 5.0:
            raise ValueError(f"azimuth_step_deg must lie in [0.01, 5] degrees, got {self.azimuth_step_deg}")
        if not 0 < self.min_range < self.max_range:
            raise ValueError(f"need 0 < min_range < max_range, got {self.min_range} and {self.max_range}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")

    @property
    def num_beams(self) -> int:
        return len(self.elevations_deg)

    @property
    def num_columns(self) -> int:
        """Firings per laser in one revolution."""
        return int(round(360.0 / self.azimuth_step_deg))

    def elevations(self) -> np.ndarray:
        """``[B]`` laser elevations in radians, highest first."""
        return np.radians(np.asarray(self.elevations_deg, dtype=np.float64))

    def azimuths(self) -> np.ndarray:
        """``[C]`` column azimuths in radians, in ``[0, 2 pi)``."""
        return np.arange(self.num_columns) * (2 * np.pi / self.num_columns)

    def ray_directions(self) -> np.ndarray:
        """``[B, C, 3]`` unit ray directions in the sensor frame (x forward, y left, z up)."""
        elevation = self.elevations()[:, None]
        azimuth = self.azimuths()[None, :]
        return np.stack(
            np.broadcast_arrays(np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                                np.sin(elevation)), -1
        )


@lru_cache(maxsize=4)
def direction_table(sensor: SensorConfig) -> np.ndarray:
    """Read-only ``[B, C, 3]`` :meth:`SensorConfig.ray_directions`, computed once per configuration."""
    table = sensor.ray_directions()
    table.flags.writeable = False
    return table


@lru_cache(maxsize=4)
def ego_mask(sensor: SensorConfig) -> np.ndarray:
    """``[B, C]`` bool: rays that hit the recording car's own body (they never return a point)."""
    directions = sensor.ray_directions().reshape(-1, 3)
    blocked = np.zeros(len(directions), dtype=bool)
    for box in sensor.ego_boxes:
        blocked |= _rays_hit_upright_box(directions, np.asarray(box, dtype=np.float64))
    blocked = blocked.reshape(sensor.num_beams, sensor.num_columns)
    blocked.flags.writeable = False
    return blocked


def _rays_hit_upright_box(directions: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Slab test of rays from the origin against one LiDAR box; ``[R]`` bool."""
    cos, sin = np.cos(box[6]), np.sin(box[6])
    rotation = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])  # LiDAR -> box frame
    local = directions @ rotation.T
    centre = rotation @ np.array([box[0], box[1], 0.0])
    lower = centre + np.array([-box[3] / 2, -box[4] / 2, box[2]])
    upper = centre + np.array([box[3] / 2, box[4] / 2, box[2] + box[5]])
    with np.errstate(divide="ignore", invalid="ignore"):
        t0, t1 = lower / local, upper / local
    t_near = np.nan_to_num(np.minimum(t0, t1), nan=-np.inf).max(1)
    t_far = np.nan_to_num(np.maximum(t0, t1), nan=np.inf).min(1)
    return (t_near <= t_far) & (t_far > 0)
