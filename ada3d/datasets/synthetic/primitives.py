"""The shapes a simulated scene is built from, packed in one float64 table the ray caster reads.

Three kinds of upright shapes (their vertical axis is the LiDAR z axis):

* box: ``(x, y, z, l, w, h, yaw)`` like a LiDAR box, z at the bottom;
* cylinder: vertical, a centre ``(x, y)``, bottom and top z, a radius;
* ellipsoid: a centre ``(x, y, z)``, a horizontal and a vertical semi-axis.

Every shape carries what the ray caster and the return model need: a reflectivity (in KITTI intensity
units, 0..1), a gloss exponent (0 for matte surfaces; glossy ones such as car paint send back a strong
intensity only near normal incidence), an extra dropout probability (glass: most returns are lost), a
density (1/m; > 0 makes the shape a volume that rays penetrate for an exponentially distributed depth,
like foliage) and the index of the labelled object it belongs to (-1 for scenery).
"""

from __future__ import annotations

import numpy as np

BOX, CYLINDER, ELLIPSOID = 0, 1, 2

# columns of the primitive table
KIND, CX, CY, Z0, Z1, HALF_L, HALF_W, COS, SIN, REFLECTIVITY, DROPOUT, DENSITY, OBJECT, RADIUS, GLOSS = range(15)
NUM_COLUMNS = 15


class PrimitiveSet:
    """Collects shapes; :meth:`to_array` packs them into the ``[N, 15]`` table (columns above).

    ``Z0``/``Z1`` always hold the vertical extent; ``HALF_L`` is the box half-length, the cylinder radius
    or the ellipsoid's horizontal semi-axis; ``HALF_W`` the box half-width; ``COS``/``SIN`` the box yaw;
    ``RADIUS`` the radius of a vertical cylinder around the shape (used to cull rays).
    """

    def __init__(self):
        self._rows: list[np.ndarray] = []

    def _add(self, kind, cx, cy, z0, z1, half_l, half_w, yaw, radius, reflectivity, dropout, density, obj, gloss):
        if not (z1 > z0 and half_l > 0 and half_w >= 0):
            raise ValueError(f"degenerate shape: z {z0}..{z1}, half sizes {half_l}, {half_w}")
        row = np.zeros(NUM_COLUMNS)
        values = {KIND: kind, CX: cx, CY: cy, Z0: z0, Z1: z1, HALF_L: half_l, HALF_W: half_w, COS: np.cos(yaw),
                  SIN: np.sin(yaw), REFLECTIVITY: reflectivity, DROPOUT: dropout, DENSITY: density, OBJECT: obj,
                  RADIUS: radius, GLOSS: gloss}
        row[list(values)] = list(values.values())
        self._rows.append(row)

    def add_box(self, box, reflectivity: float, dropout: float = 0.0, density: float = 0.0, obj: int = -1,
                gloss: float = 0.0):
        """An upright box ``(x, y, z, l, w, h, yaw)`` (z at the bottom), metres and radians."""
        x, y, z, length, width, height, yaw = (float(v) for v in box)
        self._add(BOX, x, y, z, z + height, length / 2, width / 2, yaw, np.hypot(length, width) / 2,
                  reflectivity, dropout, density, obj, gloss)

    def add_cylinder(self, x: float, y: float, z0: float, z1: float, radius: float, reflectivity: float,
                     dropout: float = 0.0, density: float = 0.0, obj: int = -1, gloss: float = 0.0):
        """A vertical cylinder from ``z0`` to ``z1`` around ``(x, y)``."""
        self._add(CYLINDER, x, y, z0, z1, radius, 0.0, 0.0, radius, reflectivity, dropout, density, obj, gloss)

    def add_ellipsoid(self, x: float, y: float, z: float, radius_xy: float, radius_z: float, reflectivity: float,
                      dropout: float = 0.0, density: float = 0.0, obj: int = -1, gloss: float = 0.0):
        """An ellipsoid centred at ``(x, y, z)`` with horizontal / vertical semi-axes."""
        self._add(ELLIPSOID, x, y, z - radius_z, z + radius_z, radius_xy, 0.0, 0.0, radius_xy,
                  reflectivity, dropout, density, obj, gloss)

    def to_array(self) -> np.ndarray:
        """``[N, 15]`` float64 table (``[0, 15]`` when empty)."""
        return np.stack(self._rows) if self._rows else np.zeros((0, NUM_COLUMNS))
