"""One random street scene around the recording car: terrain, roads, scenery and labelled road users."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.synthetic.footprints import FootprintSet
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.layout import GroundSurface, Road, classify_ground, make_road, sidewalk_pieces
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
        primitives: ``[N, 14]`` shape table; rows of one object are consecutive, scenery first.
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
    """Gentle slope (about 1 %) and two or three long undulations (slope of each at most 1.2 %)."""
    waves = []
    for _ in range(rng.integers(2, 4)):
        wavelength = rng.uniform(40.0, 150.0)
        amplitude = rng.uniform(0.2, 1.0) * 0.012 * wavelength / (2 * np.pi)
        direction = rng.uniform(0, np.pi)
        k = 2 * np.pi / wavelength
        waves.append((amplitude, k * np.cos(direction), k * np.sin(direction), rng.uniform(0, 2 * np.pi)))
    return GroundModel.create(sensor_height, slope=rng.normal(0.0, 0.01, size=2), waves=waves, raised=raised)


def _roads(kind: str, rng: np.random.Generator) -> list[Road]:
    """The main road (the recording car in one of its +x lanes) and maybe a crossing or T-junction road."""
    if kind == "city":
        lanes = int(rng.choice((1, 2)))
    else:
        lanes = 1 if kind == "residential" else int(rng.choice((1, 2), p=(0.8, 0.2)))
    parking_share = {"city": 0.6, "residential": 0.8, "road": 0.0}[kind]
    parking = tuple(float(rng.uniform(2.0, 2.4)) if rng.random() < parking_share else 0.0 for _ in range(2))
    sidewalk = {"city": rng.uniform(2.5, 5.0), "residential": rng.uniform(1.5, 3.0), "road": 0.0}[kind]
    curb = float(rng.uniform(0.10, 0.18))
    heading = float(rng.normal(0.0, 0.04))
    probe = make_road(rng, (0.0, 0.0), heading, (-ROAD_HALF_LENGTH, ROAD_HALF_LENGTH), lanes, parking, sidewalk, curb)
    ego_lane = int(rng.integers(lanes))
    shift = (ego_lane + 0.5) * probe.lane_width  # the axis lies left of the recording car's lane centre
    probe.origin = (-shift * np.sin(heading), shift * np.cos(heading))
    roads = [probe]
    crossing_share = {"city": 0.5, "residential": 0.4, "road": 0.15}[kind]
    if rng.random() < crossing_share:
        along = float(rng.uniform(8.0, 45.0)) * (1 if rng.random() < 0.7 else -1)
        angle = float(np.clip(np.pi / 2 + rng.normal(0, 0.25), np.radians(55), np.radians(125)))
        centre = probe.to_world(along, 0.0)
        cross_parking = tuple(float(rng.uniform(2.0, 2.4)) if rng.random() < parking_share / 2 else 0.0
                              for _ in range(2))
        half = ROAD_HALF_LENGTH
        extent = (-half, half) if rng.random() < 0.5 else ((0.0, half) if rng.random() < 0.5 else (-half, 0.0))
        roads.append(make_road(rng, centre, heading + angle, extent, 1, cross_parking, sidewalk, curb))
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
    surface = GroundSurface(asphalt=float(rng.uniform(0.22, 0.33)), marking=float(rng.uniform(0.55, 0.8)),
                            sidewalk=float(rng.uniform(0.28, 0.42)), terrain=float(rng.uniform(0.3, 0.5)))
    primitives = PrimitiveSet()
    obstacles = FootprintSet()
    add_scenery(kind, roads, primitives, obstacles, ground, rng)
    objects = place_road_users(kind, roads, ground, obstacles, rng)
    for index, obj in enumerate(objects):
        add_object_parts(primitives, obj, index, rng)
    return Scene(kind, ground, roads, surface, primitives.to_array(), objects)

