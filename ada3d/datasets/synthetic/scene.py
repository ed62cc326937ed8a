"""One random street scene around the recording car: terrain, roads, scenery and labelled road users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.synthetic.footprints import FootprintSet
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.layout import (
    STREET_PROFILES,
    GroundSurface,
    Road,
    classify_ground,
    make_road,
    sidewalk_pieces,
)
from ada3d.datasets.synthetic.objects import SceneObject, add_object_parts
from ada3d.datasets.synthetic.placement import place_road_users
from ada3d.datasets.synthetic.primitives import PrimitiveSet
from ada3d.datasets.synthetic.scenery import SCENE_KINDS, add_scenery

SCENE_KIND_SHARES = (0.35, 0.4, 0.25)  # city, residential, road
ROAD_HALF_LENGTH = 150.0


@dataclass
class Scene:
    """Everything the ray caster and the labeller need about one scene.

    Attributes:
        kind: one of ``city``, ``residential``, ``road``.
        ground: terrain with its sidewalks.
        roads: the roads (for ground materials); ``roads[0]`` is the one the recording car drives on.
        surface: reflectivity of the ground materials.
        primitives: ``[N, NUM_COLUMNS]`` shape table (module ``primitives``); scenery first, then the rows of
            each object, consecutive.
        objects: labelled objects, indexed as in ``primitives[:, OBJECT]``.
    """

    kind: str
    ground: GroundModel
    roads: list[Road]
    surface: GroundSurface
    primitives: np.ndarray
    objects: list[SceneObject]

    def ground_reflectivity(self, points_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reflectivity ``[N]`` and surface class ``[N]`` of ground points ``[N, 2]``."""
        classes = classify_ground(points_xy, self.roads, self.ground)
        table = np.array([self.surface.asphalt, self.surface.marking, self.surface.sidewalk, self.surface.terrain])
        return table[classes], classes


def _terrain(rng: np.random.Generator, sensor_height: float, raised) -> GroundModel:
    """The ground as the scanner sees it.

    Plane fits to the real scans' ground (4-25 m) give a slope of +1.1 % (+-0.4 %) along x in every frame
    (the scanner is mounted pitched down by about 0.6 deg) and -0.5 % (+-1.2 %) across (camber and
    roll), 1.60-1.75 m below the scanner, with 3-4 cm of residual roughness. Here: that slope, the height
    jittered by 3 cm, two long undulations (slope at most 1.2 % each) and two short ones (1-3 cm).
    """
    def sines(wavelengths, amplitude):
        terms = []
        for wavelength in wavelengths:
            k = 2 * np.pi / wavelength
            direction = rng.uniform(0, np.pi)
            terms.append((amplitude(k), k * np.cos(direction), k * np.sin(direction), rng.uniform(0, 2 * np.pi)))
        return terms

    waves = sines(rng.uniform(40.0, 150.0, 2), lambda k: rng.uniform(0.2, 1.0) * 0.012 / k)
    ripples = sines(rng.uniform(6.0, 20.0, 2), lambda k: rng.uniform(0.01, 0.03))
    slope = (rng.normal(0.011, 0.004), rng.normal(-0.005, 0.012))
    return GroundModel.create(sensor_height + rng.normal(0.0, 0.03), slope=slope, waves=waves, ripples=ripples,
                              raised=raised)


def _roads(kind: str, rng: np.random.Generator) -> list[Road]:
    """The main road (the recording car in one of its +x lanes) and maybe a crossing or T-junction road."""
    profile = STREET_PROFILES[kind]
    lanes = int(rng.choice(profile.lanes, p=profile.lane_shares))
    lane_width = float(rng.uniform(*profile.lane_width))

    def parking_strips(share):
        return tuple(float(rng.uniform(2.0, 2.4)) if rng.random() < share else 0.0 for _ in range(2))

    sidewalk = float(rng.uniform(*profile.sidewalk)) if rng.random() < profile.sidewalk_share else 0.0
    curb = float(rng.uniform(0.10, 0.18))
    heading = float(rng.normal(0.0, 0.04))
    shift = (int(rng.integers(lanes)) + 0.5) * lane_width  # the axis lies left of the recording car's lane
    origin = (-shift * np.sin(heading), shift * np.cos(heading))
    along = float(rng.uniform(8.0, 45.0)) * (1 if rng.random() < 0.7 else -1)
    crossing = rng.random() < profile.crossing_share
    ends = [float(rng.uniform(35.0, 120.0)) if rng.random() < profile.end_share else ROAD_HALF_LENGTH
            for _ in range(2)]
    if crossing:  # the crossing road stays in view
        ends = [max(ends[0], -along + 20.0), max(ends[1], along + 20.0)]
    roads = [make_road(rng, origin, heading, (-ends[0], ends[1]), lanes, lane_width,
                       parking_strips(profile.parking_share), sidewalk, curb)]
    roads[0].ends_closed = (ends[0] < ROAD_HALF_LENGTH, ends[1] < ROAD_HALF_LENGTH)
    if crossing:
        angle = float(np.clip(np.pi / 2 + rng.normal(0, 0.25), np.radians(55), np.radians(125)))
        half = ROAD_HALF_LENGTH
        extent = (-half, half) if rng.random() < 0.5 else ((0.0, half) if rng.random() < 0.5 else (-half, 0.0))
        roads.append(make_road(rng, roads[0].to_world(along, 0.0), heading + angle, extent, 1,
                               float(rng.uniform(*profile.lane_width)), parking_strips(profile.parking_share / 2),
                               sidewalk, curb))
    return roads


def generate_scene(rng: np.random.Generator, sensor_height: float = 1.73, kind: str | None = None) -> Scene:
    """Draw one scene; ``kind`` (``city`` / ``residential`` / ``road``) is drawn too when None."""
    if kind is None:
        kind = str(rng.choice(SCENE_KINDS, p=SCENE_KIND_SHARES))
    elif kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {SCENE_KINDS}")
    roads = _roads(kind, rng)
    raised = [piece for road in roads for piece in sidewalk_pieces(road, [r for r in roads if r is not road])]
    ground = _terrain(rng, sensor_height, raised)
    surface = GroundSurface(asphalt=float(rng.uniform(0.32, 0.40)), marking=float(rng.uniform(0.6, 0.85)),
                            sidewalk=float(rng.uniform(0.33, 0.45)), terrain=float(rng.uniform(0.3, 0.5)))
    primitives = PrimitiveSet()
    obstacles = FootprintSet()
    add_scenery(kind, roads, primitives, obstacles, ground, rng)
    objects = place_road_users(kind, roads, ground, obstacles, rng)
    for index, obj in enumerate(objects):
        add_object_parts(primitives, obj, index, rng)
    return Scene(kind, ground, roads, surface, primitives.to_array(), objects)

