"""Where road users go: traffic in the lanes, parked rows along the curbs, pedestrians on the sidewalks,
cyclists at the right edge of the road. Nothing overlaps (footprints are checked against every placed
object, the scenery and the recording car), headings follow the road with a little noise, and every
object stands on the surface under it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.synthetic.footprints import FootprintSet, rectangle_corners
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.layout import Road
from ada3d.datasets.synthetic.objects import SIZE_STATS, SceneObject

PLACEMENT_RANGE = 75.0  # road users are placed this far (metres) along each road from the recording car
# the recording car's footprint (x, y, l, w, yaw) in the LiDAR frame
EGO_FOOTPRINT = np.array([-0.3, 0.0, 4.8, 1.9, 0.0])


@dataclass(frozen=True)
class TrafficDensity:
    """How busy a scene kind is.

    Attributes:
        lane_gap: ``(low, high)`` gap (metres) between vehicles driving in one lane.
        parked: probability that a parking slot is taken.
        pedestrians / cyclists / misc: mean counts per scene (Poisson).
        vans / trucks: share of vehicles that are vans / trucks.
    """

    lane_gap: tuple[float, float]
    parked: float
    pedestrians: float
    cyclists: float
    misc: float
    vans: float = 0.08
    trucks: float = 0.02


DENSITY = {
    "city": TrafficDensity((15.0, 80.0), 0.5, 5.0, 0.8, 0.1),
    "residential": TrafficDensity((30.0, 150.0), 0.5, 2.5, 0.6, 0.1),
    "road": TrafficDensity((25.0, 120.0), 0.0, 0.3, 0.3, 0.1, vans=0.1, trucks=0.08),
}


class _Placer:
    def __init__(self, ground: GroundModel, obstacles: FootprintSet, rng: np.random.Generator):
        self.ground, self.obstacles, self.rng = ground, obstacles, rng
        self.objects: list[SceneObject] = []
        self.obstacles.add(EGO_FOOTPRINT)

    def place(self, name: str, x: float, y: float, yaw: float, size=None, margin: float = 0.3) -> bool:
        """Place ``name`` at ``(x, y)`` heading ``yaw`` if its footprint (grown by ``margin``) is free and on one
        level (not across a curb)."""
        length, width, height = SIZE_STATS[name].sample(self.rng) if size is None else size
        footprint = np.array([x, y, length, width, yaw])
        if not self.obstacles.is_free(footprint, margin):
            return False
        spots = np.concatenate([rectangle_corners(footprint)[0], [[x, y]]])
        if np.ptp(self.ground.raised_offset(spots[:, 0], spots[:, 1])) > 0:
            return False  # it would straddle a curb
        bottom = float(self.ground.height(spots[:, 0], spots[:, 1]).min())  # the lowest point it stands on
        self.obstacles.add(footprint)
        self.objects.append(SceneObject(name, np.array([x, y, bottom, length, width, height, yaw])))
        return True

    def vehicle_class(self, density: TrafficDensity) -> str:
        draw = self.rng.random()
        return "Truck" if draw < density.trucks else "Van" if draw < density.trucks + density.vans else "Car"


def _along_range(road: Road) -> tuple[float, float]:
    s_centre, _ = road.to_local(0.0, 0.0)
    return max(road.s_min, float(s_centre) - PLACEMENT_RANGE), min(road.s_max, float(s_centre) + PLACEMENT_RANGE)


def _traffic(placer: _Placer, road: Road, density: TrafficDensity, rng):
    s_lo, s_hi = _along_range(road)
    for lane in range(road.lanes):
        for direction in (1, -1):  # +s lanes lie right of the axis (v < 0)
            v = -direction * (lane + 0.5) * road.lane_width
            busy = rng.uniform(0.3, 1.0)
            s = s_lo + float(rng.uniform(*density.lane_gap)) / busy * rng.random()
            while s < s_hi:
                name = placer.vehicle_class(density)
                x, y = road.to_world(s, v + rng.normal(0, 0.2))
                yaw = road.heading + (0.0 if direction > 0 else np.pi) + rng.normal(0, 0.03)
                placer.place(name, float(x), float(y), float(yaw), margin=0.5)
                s += float(rng.uniform(*density.lane_gap)) / busy


def _parked(placer: _Placer, road: Road, density: TrafficDensity, rng):
    s_lo, s_hi = _along_range(road)
    for side, width in ((-1, road.parking[0]), (1, road.parking[1])):
        if width <= 0:
            continue
        v_centre = (road.v_min + width / 2) if side < 0 else (road.v_max - width / 2)
        occupancy = density.parked * rng.uniform(0.6, 1.0)
        s = s_lo + float(rng.uniform(0, 5))
        while s < s_hi:
            name = placer.vehicle_class(density) if rng.random() < 0.97 else "Misc"  # Misc: a trailer
            size = SIZE_STATS[name].sample(rng)
            if rng.random() < occupancy:
                heading = road.heading + (0.0 if side < 0 else np.pi)
                if rng.random() < 0.1:
                    heading += np.pi
                lateral = v_centre + side * (width / 2 - size[1] / 2 - rng.uniform(0.1, 0.35))
                x, y = road.to_world(s + size[0] / 2, lateral)
                placer.place(name, float(x), float(y), float(heading + rng.normal(0, 0.04)), size=size, margin=0.2)
            s += size[0] + float(rng.uniform(0.5, 2.5))


def _pedestrians(placer: _Placer, roads: list[Road], density: TrafficDensity, rng):
    """Pedestrians, alone or in small groups, on a sidewalk (wholly on it, clear of the curb) or on the
    verge of a road without one."""
    for _ in range(rng.poisson(density.pedestrians)):
        road = roads[rng.integers(len(roads))]
        s_lo, s_hi = _along_range(road)
        side = rng.choice((-1, 1))
        s = float(rng.uniform(s_lo, s_hi))
        group = 1 + (rng.poisson(0.8) if rng.random() < 0.3 else 0)
        walking = road.heading + (0.0 if rng.random() < 0.5 else np.pi)
        for member in range(group):
            size = SIZE_STATS["Pedestrian"].sample(rng)
            reach = 0.5 * np.hypot(size[0], size[1]) + 0.05  # any heading keeps it off the curb
            if road.sidewalk_width > 0:
                if road.sidewalk_width < 2 * reach:
                    break
                depth = float(rng.uniform(reach, road.sidewalk_width - reach))
            else:
                depth = float(rng.uniform(0.5, 2.5))  # on the verge of a country road
            v = road.v_max + depth if side > 0 else road.v_min - depth
            x, y = road.to_world(s + member * rng.uniform(0.8, 1.4), v)
            yaw = walking + rng.normal(0, 0.3) if rng.random() < 0.7 else rng.uniform(-np.pi, np.pi)
            placer.place("Pedestrian", float(x), float(y), float(yaw), size=size, margin=0.1)


def _cyclists(placer: _Placer, roads: list[Road], density: TrafficDensity, rng):
    for _ in range(rng.poisson(density.cyclists)):
        road = roads[rng.integers(len(roads))]
        s_lo, s_hi = _along_range(road)
        direction = rng.choice((-1, 1))
        v = -direction * (road.lanes * road.lane_width - rng.uniform(0.5, 1.0))
        x, y = road.to_world(float(rng.uniform(s_lo, s_hi)), v)
        yaw = road.heading + (0.0 if direction > 0 else np.pi) + rng.normal(0, 0.05)
        placer.place("Cyclist", float(x), float(y), float(yaw), margin=0.3)


def _misc(placer: _Placer, roads: list[Road], density: TrafficDensity, rng):
    for _ in range(rng.poisson(density.misc)):
        road = roads[rng.integers(len(roads))]
        s_lo, s_hi = _along_range(road)
        side = rng.choice((-1, 1))
        offset = road.sidewalk_width + float(rng.uniform(1.5, 4.0))
        v = road.v_max + offset if side > 0 else road.v_min - offset
        x, y = road.to_world(float(rng.uniform(s_lo, s_hi)), v)
        placer.place("Misc", float(x), float(y), float(road.heading + rng.normal(0, 0.3)), margin=0.3)


def place_road_users(kind: str, roads: list[Road], ground: GroundModel, obstacles: FootprintSet,
                     rng: np.random.Generator) -> list[SceneObject]:
    """All labelled objects of one scene of ``kind`` (see :data:`DENSITY`), none overlapping another or
    ``obstacles`` (which gains their footprints)."""
    density = DENSITY[kind]
    placer = _Placer(ground, obstacles, rng)
    for road in roads:
        _parked(placer, road, density, rng)
    for road in roads:
        _traffic(placer, road, density, rng)
    _cyclists(placer, roads, density, rng)
    _pedestrians(placer, roads, density, rng)
    _misc(placer, roads, density, rng)
    return placer.objects
