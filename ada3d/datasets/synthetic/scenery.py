"""Unlabelled scenery along the roads: buildings, fences, hedges, trees, bushes, street lights, signs and
guard rails, as primitives. Their footprints go into the obstacle set so road users are not placed
inside them.

Scene kinds (KITTI's categories): ``city`` (continuous facades close to wide sidewalks, street trees),
``residential`` (houses behind front yards with fences and hedges, yard trees, parked cars) and ``road``
(a country road: no sidewalks, tree rows, bushes and guard rails, a farm house here and there).
"""

from __future__ import annotations

import numpy as np

from ada3d.datasets.synthetic.footprints import FootprintSet, rectangle_corners, rectangles_overlap
from ada3d.datasets.synthetic.ground import GroundModel
from ada3d.datasets.synthetic.layout import Road
from ada3d.datasets.synthetic.primitives import PrimitiveSet

SCENE_KINDS = ("city", "residential", "road")
FRONTAGE_RANGE = 90.0  # scenery is placed this far (metres) from the recording car along each road


def _facade(rng: np.random.Generator) -> float:
    """Reflectivity of a wall: one in five is dark (dark paint, glass fronts) and reads almost 0."""
    return float(rng.uniform(0.03, 0.1)) if rng.random() < 0.2 else float(rng.uniform(0.15, 0.5))


def _foliage(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.25, 0.5))


class _Site:
    """Where scenery goes: the shape table, the footprints taken, the terrain, and the road corridors that
    must stay clear."""

    def __init__(self, roads: list[Road], primitives: PrimitiveSet, obstacles: FootprintSet, ground: GroundModel):
        self.primitives, self.obstacles, self.ground = primitives, obstacles, ground
        self.corridors = np.stack([road.corridor(margin=-0.02) for road in roads])  # touching is fine

    def clear(self, rectangle) -> bool:
        return not rectangles_overlap(rectangle, self.corridors).any() and self.obstacles.is_free(rectangle)

    def box(self, rectangle, height, reflectivity, dropout=0.0, density=0.0, z_from=0.0) -> bool:
        """A box on the ground ``rectangle`` from ``z_from`` to ``height`` above the ground (from 0.3 m under it
        when ``z_from`` is 0, so slopes leave no gap); False when the spot is taken."""
        if not self.clear(rectangle):
            return False
        corners = rectangle_corners(rectangle)[0]
        ground = float(self.ground.height(corners[:, 0], corners[:, 1]).min())
        bottom = ground - 0.3 if z_from == 0.0 else ground + z_from
        x, y, length, width, yaw = rectangle
        self.primitives.add_box((x, y, bottom, length, width, ground + height - bottom, yaw), reflectivity,
                                dropout=dropout, density=density)
        self.obstacles.add(rectangle)
        return True


class _Frontage:
    """Places scenery beside one side of one road."""

    def __init__(self, road: Road, side: int, site: _Site):
        self.road, self.side, self.site = road, side, site
        self.primitives, self.obstacles, self.ground, self.corridors = (
            site.primitives, site.obstacles, site.ground, site.corridors)
        self.edge = road.v_max + road.sidewalk_width if side > 0 else road.v_min - road.sidewalk_width
        s_centre, _ = road.to_local(0.0, 0.0)
        self.s_start = max(road.s_min, float(s_centre) - FRONTAGE_RANGE)
        self.s_end = min(road.s_max, float(s_centre) + FRONTAGE_RANGE)

    def box(self, s0, s1, offset0, offset1, height, reflectivity, **surface) -> bool:
        """:meth:`_Site.box` between distances ``offset0 < offset1`` outwards from the sidewalk's outer edge."""
        v0, v1 = sorted((self.edge + self.side * offset0, self.edge + self.side * offset1))
        return self.site.box(self.road.rectangle(s0, s1, v0, v1), height, reflectivity, **surface)

    def curb_offset(self, distance: float) -> float:
        """Offset (as :meth:`world` takes it) of a spot ``distance`` metres outside the asphalt edge."""
        return distance - self.road.sidewalk_width

    def world(self, s, offset):
        return self.road.to_world(s, self.edge + self.side * offset)


def add_tree(primitives: PrimitiveSet, obstacles: FootprintSet, ground: GroundModel, x: float, y: float,
             rng: np.random.Generator, scale: float = 1.0) -> bool:
    """A trunk with a foliage crown (a volume rays penetrate); False when the spot is taken."""
    trunk_r = float(rng.uniform(0.1, 0.25)) * scale
    footprint = np.array([x, y, 2 * trunk_r, 2 * trunk_r, 0.0])
    if not obstacles.is_free(footprint, margin=0.1):
        return False
    z = float(ground.height(x, y))
    trunk_h = float(rng.uniform(1.0, 2.5)) * scale
    crown_xy, crown_z = float(rng.uniform(1.3, 3.2)) * scale, float(rng.uniform(1.4, 3.0)) * scale
    primitives.add_cylinder(x, y, z - 0.2, z + trunk_h + crown_z, trunk_r, float(rng.uniform(0.2, 0.4)))
    primitives.add_ellipsoid(x, y, z + trunk_h + 0.8 * crown_z, crown_xy, crown_z, _foliage(rng),
                             density=float(rng.uniform(0.8, 2.5)))
    obstacles.add(footprint)
    return True


def _street_light(frontage: _Frontage, s: float, rng):
    x, y = frontage.world(s, frontage.curb_offset(0.5))
    if not frontage.obstacles.is_free(np.array([x, y, 0.3, 0.3, 0.0])):
        return
    z = float(frontage.ground.height(x, y))
    height = float(rng.uniform(6.0, 9.0))
    frontage.primitives.add_cylinder(x, y, z - 0.2, z + height, 0.09, 0.35)
    reach = float(rng.uniform(1.0, 2.0))
    ax, ay = frontage.world(s, frontage.curb_offset(0.5 - reach / 2))
    frontage.primitives.add_box((ax, ay, z + height - 0.2, 0.25, reach, 0.2, frontage.road.heading), 0.4)
    frontage.obstacles.add(np.array([x, y, 0.3, 0.3, 0.0]))


def _sign(frontage: _Frontage, s: float, rng):
    x, y = frontage.world(s, frontage.curb_offset(0.4 if frontage.road.sidewalk_width > 0 else 0.8))
    if not frontage.obstacles.is_free(np.array([x, y, 0.3, 0.3, 0.0])):
        return
    z = float(frontage.ground.height(x, y))
    height = float(rng.uniform(2.0, 2.8))
    frontage.primitives.add_cylinder(x, y, z - 0.2, z + height, 0.04, 0.35)
    frontage.primitives.add_box((x, y, z + height - 0.05, 0.04, 0.65, 0.65, frontage.road.heading), 0.9)
    frontage.obstacles.add(np.array([x, y, 0.3, 0.3, 0.0]))


def _street_furniture(frontage: _Frontage, rng):
    """Bins, bollards, planters, bicycle stands and advertising pillars on the sidewalk."""
    for _ in range(rng.poisson((frontage.s_end - frontage.s_start) / 12.0)):
        s = float(rng.uniform(frontage.s_start, frontage.s_end))
        x, y = frontage.world(s, frontage.curb_offset(float(rng.uniform(0.3, frontage.road.sidewalk_width - 0.3))))
        kind = rng.random()
        if kind < 0.7:  # bollard or post
            footprint = np.array([x, y, 0.25, 0.25, 0.0])
            if frontage.obstacles.is_free(footprint):
                z = float(frontage.ground.height(x, y))
                frontage.primitives.add_cylinder(x, y, z - 0.1, z + float(rng.uniform(0.8, 1.2)), 0.08,
                                                 float(rng.uniform(0.2, 0.6)))
                frontage.obstacles.add(footprint)
        elif kind < 0.85:  # advertising pillar
            footprint = np.array([x, y, 1.4, 1.4, 0.0])
            if frontage.obstacles.is_free(footprint):
                z = float(frontage.ground.height(x, y))
                frontage.primitives.add_cylinder(x, y, z - 0.1, z + float(rng.uniform(2.5, 3.5)), 0.65,
                                                 float(rng.uniform(0.3, 0.6)))
                frontage.obstacles.add(footprint)
        else:  # bin, planter or bicycle stand: a small box along the curb
            length, width, height = rng.uniform((0.5, 0.5, 0.6), (2.5, 0.8, 1.2))
            offset = frontage.curb_offset(0.3 + width / 2)
            wx, wy = frontage.world(s, offset)
            footprint = np.array([wx, wy, length, width, frontage.road.heading])
            if frontage.obstacles.is_free(footprint):
                z = float(frontage.ground.height(wx, wy))
                frontage.primitives.add_box((wx, wy, z - 0.1, length, width, height + 0.1, frontage.road.heading),
                                            float(rng.uniform(0.15, 0.5)), dropout=float(rng.uniform(0.0, 0.5)))
                frontage.obstacles.add(footprint)


def _city(frontage: _Frontage, rng):
    """Facades at the back of the sidewalk with few gaps; street trees on wide sidewalks."""
    s = frontage.s_start + float(rng.uniform(0, 5))
    while s < frontage.s_end:
        length = float(rng.uniform(8, 30))
        if rng.random() < 0.9:
            setback = 0.0 if rng.random() < 0.8 else float(rng.uniform(0.0, 1.5))
            frontage.box(s, s + length, setback, setback + float(rng.uniform(8, 18)), float(rng.uniform(6, 20)),
                         _facade(rng), dropout=float(rng.uniform(0.0, 0.3)))
        else:  # a wall in front of a yard or car park
            frontage.box(s, s + length, 0.1, 0.35, float(rng.uniform(1.0, 2.5)), float(rng.uniform(0.2, 0.5)))
        s += length + (float(rng.uniform(0, 1)) if rng.random() < 0.8 else float(rng.uniform(3, 10)))
    if frontage.road.sidewalk_width >= 2.0 and rng.random() < 0.8:
        _street_trees(frontage, rng, scale=1.0)


def _street_trees(frontage: _Frontage, rng, scale: float):
    """A row of trees along the curb (on the sidewalk, or on the verge where there is none)."""
    s = frontage.s_start + float(rng.uniform(0, 10))
    while s < frontage.s_end:
        distance = float(rng.uniform(0.8, 1.2)) if frontage.road.sidewalk_width > 0 else float(rng.uniform(0.5, 2.0))
        x, y = frontage.world(s, frontage.curb_offset(distance))
        add_tree(frontage.primitives, frontage.obstacles, frontage.ground, x, y, rng, scale=scale)
        s += float(rng.uniform(7, 14))


def _residential(frontage: _Frontage, rng):
    """Lots with a fence, hedge or wall at the sidewalk, a house behind a front yard, trees and bushes;
    often a row of street trees."""
    if rng.random() < 0.8:
        _street_trees(frontage, rng, scale=1.2)
    s = frontage.s_start + float(rng.uniform(0, 5))
    while s < frontage.s_end:
        lot = float(rng.uniform(12, 26))
        boundary = rng.random()
        driveway = float(rng.uniform(2.5, 4.0))
        if boundary < 0.3:  # fence
            frontage.box(s, s + lot - driveway, 0.05, 0.12, float(rng.uniform(0.8, 1.6)),
                         float(rng.uniform(0.2, 0.45)), dropout=float(rng.uniform(0.2, 0.6)))
        elif boundary < 0.6:  # hedge
            frontage.box(s, s + lot - driveway, 0.1, float(rng.uniform(0.7, 1.5)), float(rng.uniform(1.0, 3.0)),
                         _foliage(rng), density=float(rng.uniform(2, 5)))
        elif boundary < 0.75:  # garden wall
            frontage.box(s, s + lot - driveway, 0.05, 0.3, float(rng.uniform(0.6, 2.0)), float(rng.uniform(0.2, 0.5)))
        setback = float(rng.uniform(2.0, 6.0))
        depth = float(rng.uniform(7, 12))
        house = float(rng.uniform(7, min(14, lot - 1)))
        start = s + float(rng.uniform(0, lot - house))
        frontage.box(start, start + house, setback, setback + depth, float(rng.uniform(4.5, 9)),
                     _facade(rng), dropout=float(rng.uniform(0.0, 0.2)))
        for _ in range(rng.poisson(3.5)):
            x, y = frontage.world(s + float(rng.uniform(0, lot)), float(rng.uniform(1.2, setback + depth + 6)))
            if rng.random() < 0.5:
                add_tree(frontage.primitives, frontage.obstacles, frontage.ground, x, y, rng)
            else:
                _bush(frontage, x, y, rng)
        s += lot


def _bush(frontage: _Frontage, x: float, y: float, rng):
    radius = float(rng.uniform(0.5, 1.5))
    footprint = np.array([x, y, 2 * radius, 2 * radius, 0.0])
    if rectangles_overlap(footprint, frontage.corridors).any() or not frontage.obstacles.is_free(footprint):
        return
    z = float(frontage.ground.height(x, y))
    height = float(rng.uniform(0.5, 1.2)) * radius
    frontage.primitives.add_ellipsoid(x, y, z + 0.6 * height, radius, height, _foliage(rng),
                                      density=float(rng.uniform(2, 5)))
    frontage.obstacles.add(footprint)


def _country(frontage: _Frontage, rng):
    """Hedgerows and woodland edges (a band of foliage with trees), tree rows, open fields with a distant
    tree line, farms."""
    s = frontage.s_start
    while s < frontage.s_end:
        stretch = float(rng.uniform(20, 80))
        choice = rng.random()
        if choice < 0.7:  # hedgerow: shrubs as a foliage volume, trees standing in it
            offset = float(rng.uniform(2.0, 8.0))
            depth = float(rng.uniform(3.0, 10.0))
            frontage.box(s, s + stretch, offset, offset + depth, float(rng.uniform(3.0, 10.0)),
                         _foliage(rng), density=float(rng.uniform(0.3, 1.0)))
            for ts in np.arange(s + float(rng.uniform(0, 8)), s + stretch, float(rng.uniform(6, 15))):
                x, y = frontage.world(ts, offset + depth + float(rng.uniform(0.5, 2.5)))
                add_tree(frontage.primitives, frontage.obstacles, frontage.ground, x, y, rng, scale=1.3)
        elif choice < 0.8:  # tree row
            spacing = float(rng.uniform(5, 12))
            offset = float(rng.uniform(1.5, 6))
            for ts in np.arange(s, s + stretch, spacing):
                x, y = frontage.world(ts + float(rng.uniform(-1, 1)), offset + float(rng.uniform(-0.5, 0.5)))
                add_tree(frontage.primitives, frontage.obstacles, frontage.ground, x, y, rng)
        elif choice < 0.95:  # open field up to a distant tree line
            offset = float(rng.uniform(20, 60))
            frontage.box(s, s + stretch, offset, offset + float(rng.uniform(5, 15)), float(rng.uniform(6, 15)),
                         _foliage(rng), density=float(rng.uniform(0.3, 1.0)))
        else:  # farm house
            setback = float(rng.uniform(8, 25))
            frontage.box(s, s + float(rng.uniform(10, 20)), setback, setback + float(rng.uniform(8, 14)),
                         float(rng.uniform(5, 10)), float(rng.uniform(0.2, 0.5)))
        if rng.random() < 0.2:  # guard rail
            offset = float(rng.uniform(1.0, 1.5))
            frontage.box(s, s + stretch, offset, offset + 0.1, 0.8, 0.6, z_from=0.45)
        s += stretch


def _road_end(site: _Site, road: Road, end: int, kind: str, rng):
    """Close the view where the road ends (or bends out of sight): a row of buildings, or of trees on a
    country road, across its axis."""
    s_edge = road.s_max if end > 0 else road.s_min
    near = s_edge + end * float(rng.uniform(2.0, 8.0))
    far = near + end * float(rng.uniform(8.0, 20.0))
    half = max(-road.v_min, road.v_max) + road.sidewalk_width + 25.0
    v = -half
    while v < half:
        width = float(rng.uniform(8.0, 25.0))
        rectangle = road.rectangle(min(near, far), max(near, far), v, min(v + width, half))
        if kind != "road" and rng.random() < 0.8:
            site.box(rectangle, float(rng.uniform(5.0, 15.0)), _facade(rng),
                     dropout=float(rng.uniform(0.0, 0.3)))
        else:
            site.box(rectangle, float(rng.uniform(3.0, 12.0)), _foliage(rng),
                     density=float(rng.uniform(0.3, 1.0)))
        v += width + float(rng.uniform(0.0, 3.0))


def add_scenery(kind: str, roads: list[Road], primitives: PrimitiveSet, obstacles: FootprintSet, ground: GroundModel,
                rng: np.random.Generator) -> None:
    """Line every road of the scene with the scenery of ``kind`` (one of :data:`SCENE_KINDS`) and close the
    view at the ends of roads that end (or bend away) within sight."""
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; expected one of {SCENE_KINDS}")
    builder = {"city": _city, "residential": _residential, "road": _country}[kind]
    site = _Site(roads, primitives, obstacles, ground)
    for road in roads:
        for end, closed in zip((-1, 1), road.ends_closed):
            if closed:
                _road_end(site, road, end, kind, rng)
        for side in (-1, 1):
            frontage = _Frontage(road, side, site)
            if road.sidewalk_width > 0:
                s = frontage.s_start + float(rng.uniform(0, 20))
                while s < frontage.s_end:
                    _street_light(frontage, s, rng)
                    s += float(rng.uniform(22, 40))
            for _ in range(rng.poisson(1.5)):
                _sign(frontage, float(rng.uniform(frontage.s_start, frontage.s_end)), rng)
            if road.sidewalk_width > 1.0:
                _street_furniture(frontage, rng)
            builder(frontage, rng)
