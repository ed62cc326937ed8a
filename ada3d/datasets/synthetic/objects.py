"""Labelled road users: KITTI-like size statistics and their shapes built from several primitives.

Sizes (metres, mean and spread of ``(l, w, h)``) follow the statistics of KITTI's training labels
(e.g. Car about 3.9 x 1.6 x 1.5, Pedestrian 0.8 x 0.6 x 1.75, Cyclist 1.76 x 0.6 x 1.73). Every object
is assembled in its own frame (x forward along its length, y left, z up from its bottom) from the parts
a LiDAR sees: a car is a body, a glass cabin with a roof, four tyres and two retro-reflective number
plates; a pedestrian is two legs, a torso, two arms and a head; a cyclist is a bicycle (wheels, frame)
with a rider. All parts stay inside the labelled box, a few centimetres from its faces (like KITTI's
boxes, which enclose the object's points with a little room, also for the range noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.synthetic.primitives import PrimitiveSet


@dataclass(frozen=True)
class SizeStats:
    """Normal distribution of box sizes ``(l, w, h)`` (metres), truncated to ``[low, high]``."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    low: tuple[float, float, float]
    high: tuple[float, float, float]

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        return np.clip(rng.normal(self.mean, self.std), self.low, self.high)


SIZE_STATS = {
    "Car": SizeStats((3.88, 1.63, 1.53), (0.43, 0.10, 0.14), (3.0, 1.40, 1.30), (5.2, 1.95, 1.95)),
    "Van": SizeStats((5.08, 1.90, 2.21), (0.50, 0.12, 0.28), (4.2, 1.65, 1.80), (6.3, 2.20, 2.80)),
    "Truck": SizeStats((10.1, 2.58, 3.25), (2.60, 0.18, 0.40), (6.0, 2.20, 2.60), (16.0, 2.90, 4.00)),
    "Pedestrian": SizeStats((0.84, 0.66, 1.76), (0.20, 0.12, 0.11), (0.45, 0.40, 1.45), (1.30, 0.95, 2.00)),
    "Cyclist": SizeStats((1.76, 0.60, 1.74), (0.15, 0.10, 0.09), (1.45, 0.40, 1.50), (2.10, 0.85, 1.95)),
    "Misc": SizeStats((2.60, 1.40, 1.50), (1.00, 0.40, 0.50), (0.80, 0.50, 0.70), (5.00, 2.40, 2.80)),
}
VEHICLES = ("Car", "Van", "Truck")
# room (metres) between an object's parts and its labelled box, on each side and at the top
PART_MARGIN = {"Car": 0.05, "Van": 0.05, "Truck": 0.05, "Misc": 0.05, "Pedestrian": 0.03, "Cyclist": 0.03}


@dataclass(frozen=True)
class SceneObject:
    """A labelled object: its class and LiDAR box ``[7]`` ``(x, y, z, l, w, h, yaw)``, z at the bottom."""

    name: str
    box: np.ndarray


class _PartBuilder:
    """Adds parts given in an object's own frame to a :class:`PrimitiveSet`, tagged with the object."""

    def __init__(self, primitives: PrimitiveSet, box: np.ndarray, index: int):
        self.primitives, self.index = primitives, index
        self.x, self.y, self.z, self.yaw = box[0], box[1], box[2], box[6]
        self.cos, self.sin = np.cos(self.yaw), np.sin(self.yaw)

    def _world(self, lx: float, ly: float) -> tuple[float, float]:
        return self.x + lx * self.cos - ly * self.sin, self.y + lx * self.sin + ly * self.cos

    def box(self, x0, x1, y0, y1, z0, z1, reflectivity, dropout=0.0, gloss=0.0):
        """Box covering ``[x0, x1] x [y0, y1] x [z0, z1]`` in the object frame."""
        wx, wy = self._world((x0 + x1) / 2, (y0 + y1) / 2)
        self.primitives.add_box((wx, wy, self.z + z0, x1 - x0, y1 - y0, z1 - z0, self.yaw), reflectivity,
                                dropout=dropout, obj=self.index, gloss=gloss)

    def cylinder(self, lx, ly, z0, z1, radius, reflectivity, dropout=0.0):
        wx, wy = self._world(lx, ly)
        self.primitives.add_cylinder(wx, wy, self.z + z0, self.z + z1, radius, reflectivity, dropout=dropout,
                                     obj=self.index)

    def ellipsoid(self, lx, ly, z, radius_xy, radius_z, reflectivity):
        wx, wy = self._world(lx, ly)
        self.primitives.add_ellipsoid(wx, wy, self.z + z, radius_xy, radius_z, reflectivity, obj=self.index)


def glossy_paint(rng: np.random.Generator) -> dict[str, float]:
    """Surface of a vehicle's paint: reflectivity, gloss exponent (most of its points read intensity 0, as
    on KITTI's cars, except where the paint faces the scanner) and lost returns (glossy paint mirrors part
    of the beams away: KITTI's cars hold about a quarter fewer points than a matte body would)."""
    return {"reflectivity": float(np.clip(rng.lognormal(np.log(0.3), 0.4), 0.08, 0.8)),
            "gloss": float(rng.uniform(2.0, 8.0)), "dropout": float(rng.uniform(0.1, 0.4))}


def _vehicle(parts: _PartBuilder, length, width, height, rng, kind: str):
    paint = glossy_paint(rng)
    tyre, plate = 0.05, 0.9
    glass = {"reflectivity": 0.15, "dropout": 0.5, "gloss": 10.0}
    wheel = min(0.42 * height, 0.68 if kind == "Car" else 1.0)
    clearance = 0.2 * wheel
    hl, hw = length / 2, width / 2
    if kind == "Car":
        belt = 0.58 * height
        parts.box(-hl + 0.01, hl - 0.01, -0.98 * hw, 0.98 * hw, clearance, belt, **paint)
        cabin_rear, cabin_front = -hl + 0.10 * length, hl - 0.36 * length
        parts.box(cabin_rear, cabin_front, -0.86 * hw, 0.86 * hw, belt, 0.93 * height, **glass)
        parts.box(cabin_rear + 0.05 * length, cabin_front - 0.04 * length, -0.82 * hw, 0.82 * hw, 0.93 * height,
                  height, **paint)
        axles = (-0.30 * length, 0.30 * length)
    elif kind == "Van":
        belt = 0.48 * height
        parts.box(-hl + 0.01, hl - 0.01, -0.98 * hw, 0.98 * hw, clearance, belt, **paint)
        parts.box(-hl + 0.01, hl - 0.30 * length, -0.96 * hw, 0.96 * hw, belt, height, **paint)
        parts.box(hl - 0.30 * length, hl - 0.12 * length, -0.92 * hw, 0.92 * hw, belt, 0.92 * height, **glass)
        axles = (-0.32 * length, 0.32 * length)
    else:  # truck: cab and cargo box over a chassis
        cab = min(2.2, 0.3 * length)
        parts.box(hl - cab, hl - 0.01, -0.98 * hw, 0.98 * hw, clearance, 0.55 * height, **paint)
        parts.box(hl - cab, hl - 0.35 * cab, -0.95 * hw, 0.95 * hw, 0.55 * height, 0.85 * height, **paint)
        parts.box(hl - 0.35 * cab, hl - 0.05, -0.92 * hw, 0.92 * hw, 0.55 * height, 0.82 * height, **glass)
        parts.box(-hl + 0.01, hl - cab - 0.25, -0.7 * hw, 0.7 * hw, clearance, 0.3 * height, 0.1)
        parts.box(-hl + 0.01, hl - cab - 0.25, -hw, hw, 0.3 * height, height, float(rng.uniform(0.2, 0.7)))
        axles = (-0.38 * length, -0.38 * length + 1.4, hl - 0.6 * cab)
    for axle in axles:
        for y0, y1 in ((-hw, -hw + 0.22), (hw - 0.22, hw)):
            parts.box(axle - wheel / 2, axle + wheel / 2, y0, y1, 0.0, wheel, tyre)
    plate_w = min(0.52, 0.4 * width)
    for end in (-1.0, 1.0):
        x0 = hl - 0.015 if end > 0 else -hl
        parts.box(x0, x0 + 0.015, -plate_w / 2, plate_w / 2, 0.3 * height, 0.3 * height + 0.11, plate)


def _pedestrian(parts: _PartBuilder, length, width, height, rng):
    clothes = float(rng.uniform(0.2, 0.55))
    skin = float(rng.uniform(0.25, 0.45))
    hip, shoulder = 0.47 * height, 0.82 * height
    stride = float(rng.uniform(0.0, max(length - 0.25, 0.0)))
    leg_r = 0.075 * min(width / 0.66, 1.2)
    for side in (-1.0, 1.0):
        parts.cylinder(side * stride / 2, side * 0.09, 0.0, hip, leg_r, clothes)
    torso_w = min(0.42, 0.7 * width)
    parts.box(-0.13, 0.13, -torso_w / 2, torso_w / 2, hip, shoulder, clothes)
    swing = float(rng.uniform(-1, 1)) * max(length / 2 - 0.2, 0.0)
    arm_y = min(torso_w / 2 + 0.05, width / 2 - 0.05)
    for side in (-1.0, 1.0):
        parts.cylinder(side * swing, side * arm_y, hip, 0.97 * shoulder, 0.045, clothes)
    head_rz = 0.11
    parts.ellipsoid(0.0, 0.0, height - head_rz - 0.01, 0.09, head_rz, skin)


def _cyclist(parts: _PartBuilder, length, width, height, rng):
    frame, clothes = float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.2, 0.55))
    wheel = min(0.68, 0.4 * length)
    scale = height / 1.74
    for end in (-1.0, 1.0):
        centre = end * (length / 2 - wheel / 2 - 0.01)
        parts.box(centre - wheel / 2, centre + wheel / 2, -0.03, 0.03, 0.0, wheel, 0.3, dropout=0.6)
    parts.box(-0.35 * length / 1.76, 0.3 * length / 1.76, -0.03, 0.03, 0.35, 0.95 * scale, frame, dropout=0.3)
    parts.box(0.38 * length / 1.76 - 0.03, 0.38 * length / 1.76, -min(0.25, width / 2 - 0.02),
              min(0.25, width / 2 - 0.02), 0.95 * scale, 1.0 * scale, frame, dropout=0.3)  # handlebar
    for side in (-1.0, 1.0):
        parts.cylinder(-0.05, side * 0.11, 0.3, 0.95 * scale, 0.07, clothes)
    torso_w = min(0.4, width - 0.1)
    parts.box(-0.22, 0.12, -torso_w / 2, torso_w / 2, 0.95 * scale, 1.42 * scale, clothes)
    for side in (-1.0, 1.0):
        parts.cylinder(0.25, side * (torso_w / 2), 1.02 * scale, 1.35 * scale, 0.045, clothes)
    parts.ellipsoid(0.0, 0.0, height - 0.12, 0.1, 0.11, float(rng.uniform(0.1, 0.5)))


def _misc(parts: _PartBuilder, length, width, height, rng):
    body = float(rng.uniform(0.1, 0.6))
    parts.box(-length / 2 + 0.01, length / 2 - 0.01, -width / 2 + 0.01, width / 2 - 0.01, 0.25 * height, height, body)
    parts.box(-0.2 * length, 0.2 * length, -width / 2 + 0.01, width / 2 - 0.01, 0.0, 0.25 * height, 0.04)


def add_object_parts(primitives: PrimitiveSet, obj: SceneObject, index: int, rng: np.random.Generator) -> None:
    """Append the parts of ``obj`` (tagged with ``index``) to ``primitives``."""
    parts = _PartBuilder(primitives, obj.box, index)
    margin = PART_MARGIN[obj.name] if obj.name in PART_MARGIN else 0.0
    length, width, height = obj.box[3:6] - np.array([2 * margin, 2 * margin, margin])
    if obj.name in VEHICLES:
        _vehicle(parts, length, width, height, rng, obj.name)
    elif obj.name == "Pedestrian":
        _pedestrian(parts, length, width, height, rng)
    elif obj.name == "Cyclist":
        _cyclist(parts, length, width, height, rng)
    elif obj.name == "Misc":
        _misc(parts, length, width, height, rng)
    else:
        raise ValueError(f"no shape model for class {obj.name!r}; known: {sorted(SIZE_STATS)}")
