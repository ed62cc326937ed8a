"""Street layout: straight roads (lanes, parking strips, markings), sidewalks behind curbs, and the terrain.

Each road has its own frame: ``s`` along its axis, ``v`` across it (left positive), and spans
``s_min..s_max``. Its asphalt covers ``v_min..v_max``; sidewalks of ``sidewalk_width`` lie outside,
raised by ``curb_height``. Traffic keeps to the right: lanes with ``v < 0`` run towards +s. The
recording car drives in a lane of the main road, so the main road's axis runs (almost) along the
LiDAR x axis. A crossing road meets it at 55-125 deg, either on both sides (crossing) or on one (T).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ada3d.datasets.synthetic.footprints import rectangles_overlap
from ada3d.datasets.synthetic.ground import GroundModel

ASPHALT, MARKING, SIDEWALK, TERRAIN = range(4)  # ground surface classes


@dataclass
class Road:
    """One straight road.

    Attributes:
        origin: ``(x, y)`` of the axis point ``s = 0`` (LiDAR frame, metres).
        heading: direction of +s (radians from the LiDAR x axis).
        lane_width: metres; ``lanes`` per direction.
        v_min / v_max: asphalt edges (parking strips included).
        parking: ``(right, left)`` parking-strip widths (0 = none).
        sidewalk_width / curb_height: metres (0 width = no sidewalk, e.g. a country road).
        s_min / s_max: extent along the axis.
        lines: marking lines ``(v, dashed)``.
        ends_closed: ``(at s_min, at s_max)``: whether the road ends (or bends away) there, so that
            scenery closes the view beyond.
    """

    origin: tuple[float, float]
    heading: float
    lane_width: float
    lanes: int
    parking: tuple[float, float]
    sidewalk_width: float
    curb_height: float
    s_min: float
    s_max: float
    lines: list[tuple[float, bool]] = field(default_factory=list)
    ends_closed: tuple[bool, bool] = (False, False)

    @property
    def v_min(self) -> float:
        return -self.lanes * self.lane_width - self.parking[0]

    @property
    def v_max(self) -> float:
        return self.lanes * self.lane_width + self.parking[1]

    def to_local(self, x, y):
        dx, dy = np.asarray(x) - self.origin[0], np.asarray(y) - self.origin[1]
        cos, sin = np.cos(self.heading), np.sin(self.heading)
        return dx * cos + dy * sin, -dx * sin + dy * cos

    def to_world(self, s, v):
        cos, sin = np.cos(self.heading), np.sin(self.heading)
        s, v = np.asarray(s, dtype=np.float64), np.asarray(v, dtype=np.float64)
        return self.origin[0] + s * cos - v * sin, self.origin[1] + s * sin + v * cos

    def rectangle(self, s0: float, s1: float, v0: float, v1: float, yaw_offset: float = 0.0) -> np.ndarray:
        """``[5]`` ground rectangle covering ``[s0, s1] x [v0, v1]`` of this road's frame."""
        x, y = self.to_world((s0 + s1) / 2, (v0 + v1) / 2)
        return np.array([x, y, s1 - s0, v1 - v0, self.heading + yaw_offset])

    def corridor(self, margin: float = 0.0) -> np.ndarray:
        """Rectangle of asphalt plus sidewalks, grown by ``margin`` across the road."""
        outer = self.sidewalk_width + margin
        return self.rectangle(self.s_min, self.s_max, self.v_min - outer, self.v_max + outer)

    def asphalt(self) -> np.ndarray:
        return self.rectangle(self.s_min, self.s_max, self.v_min, self.v_max)


@dataclass(frozen=True)
class StreetProfile:
    """Statistics of one scene kind's streets (metres; shares are probabilities): lanes per direction, lane
    width, parking strips, sidewalks, how often a road crosses and how often the street ends or bends out
    of sight (35-120 m away) on each side.

    The real scans are mostly narrow streets: walls, parked cars and hedges 4-8 m to the side in town,
    continuous vegetation 5-10 m to the side on country roads.
    """

    lanes: tuple[int, ...]
    lane_shares: tuple[float, ...]
    lane_width: tuple[float, float]
    parking_share: float
    sidewalk: tuple[float, float]
    sidewalk_share: float
    crossing_share: float
    end_share: float


STREET_PROFILES = {
    "city": StreetProfile((1, 2), (0.8, 0.2), (2.9, 3.4), 0.5, (2.0, 4.0), 1.0, 0.5, 0.75),
    "residential": StreetProfile((1,), (1.0,), (2.5, 3.0), 0.6, (1.0, 2.0), 0.85, 0.4, 0.75),
    "road": StreetProfile((1, 2), (0.75, 0.25), (3.25, 3.75), 0.0, (0.0, 0.0), 0.0, 0.15, 0.5),
}


def make_road(rng: np.random.Generator, origin, heading: float, s_range, lanes: int, lane_width: float, parking,
              sidewalk: float, curb: float) -> Road:
    """A road with dashed lane lines, a solid or dashed centre line and edge lines where no curb is."""
    road = Road((float(origin[0]), float(origin[1])), float(heading), float(lane_width), lanes,
                (float(parking[0]), float(parking[1])), float(sidewalk), float(curb), *s_range)
    road.lines.append((0.0, bool(rng.random() < 0.6)))
    for k in range(1, lanes):
        road.lines += [(k * road.lane_width, True), (-k * road.lane_width, True)]
    if sidewalk == 0.0 or parking[0] > 0:
        road.lines.append((-lanes * road.lane_width, False))
    if sidewalk == 0.0 or parking[1] > 0:
        road.lines.append((lanes * road.lane_width, False))
    return road


def sidewalk_pieces(road: Road, others: list[Road]) -> list[np.ndarray]:
    """Raised rectangles ``(cx, cy, half_l, half_w, cos, sin, height)`` of ``road``'s two sidewalks,
    cut where another road's asphalt crosses them."""
    if road.sidewalk_width <= 0:
        return []
    pieces = []
    for v0, v1 in ((road.v_min - road.sidewalk_width, road.v_min), (road.v_max, road.v_max + road.sidewalk_width)):
        free = [(road.s_min, road.s_max)]
        for other in others:
            cut = _crossing_interval(road, v0, v1, other)
            if cut is not None:
                free = [piece for s0, s1 in free for piece in ((s0, min(s1, cut[0])), (max(s0, cut[1]), s1))
                        if piece[1] - piece[0] > 0.5]
        for s0, s1 in free:
            x, y = road.to_world((s0 + s1) / 2, (v0 + v1) / 2)
            pieces.append(np.array([x, y, (s1 - s0) / 2, (v1 - v0) / 2, np.cos(road.heading), np.sin(road.heading),
                                    road.curb_height]))
    return pieces


def _crossing_interval(road: Road, v0: float, v1: float, other: Road):
    """Interval of ``road``'s s where its strip ``[v0, v1]`` meets ``other``'s asphalt (None if nowhere)."""
    relative = other.heading - road.heading
    if abs(np.sin(relative)) < 0.2:
        return None  # (almost) parallel roads do not cut each other's sidewalks here
    strip = road.rectangle(road.s_min, road.s_max, v0, v1)
    if not rectangles_overlap(strip, other.asphalt()[None])[0]:
        return None
    ends = []
    for v in (v0, v1):
        # points of the strip edge line s -> (s, v) have other-v linear in s: solve for both asphalt edges
        x0, y0 = road.to_world(0.0, v)
        x1, y1 = road.to_world(1.0, v)
        _, w0 = other.to_local(x0, y0)
        _, w1 = other.to_local(x1, y1)
        rate = w1 - w0
        ends += [(other.v_min - w0) / rate, (other.v_max - w0) / rate]
    return min(ends) - 0.3, max(ends) + 0.3


@dataclass(frozen=True)
class GroundSurface:
    """Reflectivity of the ground materials of one scene (KITTI intensity units)."""

    asphalt: float
    marking: float
    sidewalk: float
    terrain: float


def classify_ground(points_xy: np.ndarray, roads: list[Road], ground: GroundModel) -> np.ndarray:
    """``[N]`` surface class (:data:`ASPHALT`, :data:`MARKING`, :data:`SIDEWALK`, :data:`TERRAIN`) of ground
    points ``[N, 2]``."""
    x, y = points_xy[:, 0], points_xy[:, 1]
    classes = np.full(len(points_xy), TERRAIN, dtype=np.int8)
    for road in roads:
        s, v = road.to_local(x, y)
        inside = (s >= road.s_min) & (s <= road.s_max)
        classes[inside & (v >= road.v_min) & (v <= road.v_max)] = ASPHALT
        for line_v, dashed in road.lines:
            on_line = inside & (np.abs(v - line_v) < 0.07)
            if dashed:
                on_line &= np.mod(s, 9.0) < 3.0
            classes[on_line] = MARKING
    classes[ground.raised_offset(x, y) > 0] = SIDEWALK
    return classes
