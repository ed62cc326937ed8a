"""From ray hits to a KITTI-like point cloud: lost returns, range noise and intensities.

Return model, per ray that hit a surface of reflectivity ``rho`` at range ``r`` with incidence cosine
``cos``:

* received power ``P = rho * cos**0.5 / r**2`` (the square root: real ground returns survive grazing
  angles better than a Lambertian law predicts); the return is detected with probability
  ``sigmoid(ln(P / P50) / 0.35)``, where ``P50`` is the power of a 0.3-reflectivity surface at
  :attr:`SensorConfig.detection_range_grey`: dark and grazing surfaces vanish first at range;
* independently lost with probability :attr:`SensorConfig.dropout` and the surface's own dropout (glass);
* range noise ``N(0, range_noise)``;
* intensity ``rho * texture * lobe(cos) * falloff(r) - floor``, with a log-normal surface texture, the
  lobe ``0.8 + 0.2 cos`` of a matte surface or ``cos**gloss`` of a glossy one (car paint, glass),
  ``falloff = 1 / (1 + (r / intensity_falloff_range)**6)`` and :data:`INTENSITY_FLOOR`; clipped to
  [0, 1] and rounded to 0.01 as KITTI stores it. The floor turns weak returns into exact zeros, as in the
  real scans (where most points of glossy cars and almost every point beyond 45 m read 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.synthetic.primitives import DROPOUT, GLOSS, OBJECT, REFLECTIVITY
from ada3d.datasets.synthetic.raycast import GROUND, RayHits, cast_rays
from ada3d.datasets.synthetic.scene import Scene
from ada3d.datasets.synthetic.sensor import SensorConfig, direction_table

DETECTION_SOFTNESS = 0.35
INCIDENCE_EXPONENT = 0.5
INTENSITY_FLOOR = 0.03
TEXTURE_SIGMA = 0.3  # log-normal spread of the reflectivity from point to point


@dataclass
class Scan:
    """One simulated revolution.

    Attributes:
        points: ``[N, 4]`` float32 ``(x, y, z, intensity)``, ring after ring from the top, azimuth ascending.
        ring: ``[N]`` int16 laser index of each point (0 = highest).
        primitive: ``[N]`` int32 primitive each point lies on (``-1`` = ground).
        ground_class: ``[N]`` int8 surface class of ground points (see ``layout``), -1 elsewhere.
        object_index: ``[N]`` int32 labelled object each point lies on, -1 for scenery and ground.
        rays_on_object: ``[M]`` rays whose line meets each object (occluded or not).
        visible_rays: ``[M]`` rays whose first hit is on each object (before lost returns).
    """

    points: np.ndarray
    ring: np.ndarray
    primitive: np.ndarray
    ground_class: np.ndarray
    object_index: np.ndarray
    rays_on_object: np.ndarray
    visible_rays: np.ndarray


def simulate_scan(scene: Scene, sensor: SensorConfig, rng: np.random.Generator) -> Scan:
    """Cast ``sensor`` into ``scene`` and turn the hits into points (see the module docstring)."""
    num_objects = len(scene.objects)
    hits: RayHits = cast_rays(sensor, scene.ground, scene.primitives, num_objects, int(rng.integers(2**63)))
    hit_rays = np.flatnonzero(np.isfinite(hits.range))  # ring-major order: ring after ring, azimuth ascending
    beam = (hit_rays // sensor.num_columns).astype(np.int16)
    ranges = hits.range.ravel()[hit_rays].astype(np.float64)
    primitive = hits.hit.ravel()[hit_rays]
    cosine = hits.cos_incidence.ravel()[hit_rays].astype(np.float64)
    directions = direction_table(sensor).reshape(-1, 3)[hit_rays]

    # per-surface properties; the extra last row (index -1 = GROUND) stands for the terrain
    table = np.concatenate([scene.primitives[:, [REFLECTIVITY, DROPOUT, GLOSS, OBJECT]], [[0.0, 0.0, 0.0, -1.0]]])
    reflectivity, surface_dropout, gloss, owner = table[primitive].T
    object_index = owner.astype(np.int32)
    on_ground = primitive == GROUND
    ground_class = np.full(len(ranges), -1, dtype=np.int8)
    ground_xy = directions[on_ground, :2] * ranges[on_ground, None]
    reflectivity[on_ground], ground_class[on_ground] = scene.ground_reflectivity(ground_xy)
    visible_rays = np.bincount(object_index[object_index >= 0], minlength=num_objects)

    power = reflectivity * np.maximum(cosine, 0.02) ** INCIDENCE_EXPONENT / ranges**2
    reference = 0.3 / sensor.detection_range_grey**2
    detect = 1.0 / (1.0 + (reference / np.maximum(power, 1e-30)) ** (1.0 / DETECTION_SOFTNESS))
    draws = rng.random((3, len(ranges)))
    keep = (draws[0] < detect) & (draws[1] >= sensor.dropout) & (draws[2] >= surface_dropout)
    if sensor.output_range is not None:
        keep &= ranges <= sensor.output_range

    measured = ranges[keep] + rng.normal(0.0, sensor.range_noise, int(keep.sum()))
    texture = np.exp(rng.normal(0.0, TEXTURE_SIGMA, len(measured)))
    falloff = 1.0 / (1.0 + (measured / sensor.intensity_falloff_range) ** 6)
    lobe = np.where(gloss[keep] > 0, cosine[keep] ** gloss[keep], 0.8 + 0.2 * cosine[keep])
    intensity = reflectivity[keep] * texture * lobe * falloff - INTENSITY_FLOOR
    intensity = np.round(np.clip(intensity, 0.0, 1.0), 2)
    points = np.concatenate([directions[keep] * measured[:, None], intensity[:, None]], 1).astype(np.float32)
    return Scan(points, beam[keep], primitive[keep], ground_class[keep], object_index[keep],
                hits.rays_on_object, visible_rays)

