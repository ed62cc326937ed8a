"""The terrain: a gently sloped, undulating height field with raised slabs (sidewalks behind curbs).

Height of the smooth terrain at ``(x, y)`` (LiDAR frame, metres)::

    g(x, y) = base + sx * x + sy * y + sum_k a_k * sin(kx_k * x + ky_k * y + phase_k)

``base`` is chosen so that ``g(0, 0) = -sensor_height``: the scanner stands ``sensor_height`` above the
ground under it, as in KITTI where the ground is near ``z = -1.73``. A raised region is an oriented
rectangle whose surface lies ``height`` above ``g`` (a sidewalk, 0.1-0.2 m); its outline is a vertical
curb face. The ray caster (numba, below) sphere-traces the smooth terrain, which needs a bound on its
slope: :attr:`GroundModel.slope_bound`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# columns of GroundModel.raised
R_CX, R_CY, R_HALF_L, R_HALF_W, R_COS, R_SIN, R_HEIGHT = range(7)


@dataclass(frozen=True)
class GroundModel:
    """Terrain of one scene.

    Attributes:
        base: constant term of ``g`` (metres).
        slope: ``(sx, sy)`` linear slope (metres per metre).
        waves: ``[K, 4]`` undulation terms ``(amplitude m, kx rad/m, ky rad/m, phase rad)``.
        raised: ``[M, 7]`` raised rectangles ``(cx, cy, half_l, half_w, cos yaw, sin yaw, height)``.
    """

    base: float
    slope: tuple[float, float]
    waves: np.ndarray
    raised: np.ndarray

    @classmethod
    def create(cls, sensor_height: float, slope=(0.0, 0.0), waves=None, raised=None) -> GroundModel:
        """A terrain that passes ``sensor_height`` below the origin."""
        waves = np.zeros((0, 4)) if waves is None else np.asarray(waves, dtype=np.float64).reshape(-1, 4)
        raised = np.zeros((0, 7)) if raised is None else np.asarray(raised, dtype=np.float64).reshape(-1, 7)
        base = -sensor_height - float(np.sum(waves[:, 0] * np.sin(waves[:, 3])))
        return cls(base, (float(slope[0]), float(slope[1])), waves, raised)

    @property
    def slope_bound(self) -> float:
        """Upper bound of ``|grad g|`` (metres per metre)."""
        return float(np.hypot(*self.slope) + np.sum(np.abs(self.waves[:, 0]) * np.hypot(self.waves[:, 1],
                                                                                        self.waves[:, 2])))

    def smooth_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``g(x, y)`` for arrays of coordinates (metres)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        height = self.base + self.slope[0] * x + self.slope[1] * y
        for amplitude, kx, ky, phase in self.waves:
            height = height + amplitude * np.sin(kx * x + ky * y + phase)
        return height

    def raised_offset(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height of the raised region above ``g`` at ``(x, y)`` (0 outside every region)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        offset = np.zeros(np.broadcast(x, y).shape)
        for cx, cy, half_l, half_w, cos, sin, height in self.raised:
            dx, dy = x - cx, y - cy
            inside = (np.abs(dx * cos + dy * sin) <= half_l) & (np.abs(-dx * sin + dy * cos) <= half_w)
            offset = np.where(inside, np.maximum(offset, height), offset)
        return offset

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Surface height at ``(x, y)``: terrain plus raised slabs (metres)."""
        return self.smooth_height(x, y) + self.raised_offset(x, y)

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(linear [4] = (base, sx, sy, slope_bound), waves, raised)`` for the numba caster."""
        linear = np.array([self.base, self.slope[0], self.slope[1], self.slope_bound])
        return linear, np.ascontiguousarray(self.waves), np.ascontiguousarray(self.raised)


@numba.njit(cache=True)
def _terrain(x, y, linear, waves):
    """``(g, dg/dx, dg/dy)`` at one point."""
    height = linear[0] + linear[1] * x + linear[2] * y
    gx, gy = linear[1], linear[2]
    for k in range(waves.shape[0]):
        angle = waves[k, 1] * x + waves[k, 2] * y + waves[k, 3]
        height += waves[k, 0] * np.sin(angle)
        slope = waves[k, 0] * np.cos(angle)
        gx += slope * waves[k, 1]
        gy += slope * waves[k, 2]
    return height, gx, gy


@numba.njit(cache=True)
def _trace_terrain(dx, dy, dz, offset, t_start, t_max, linear, waves):
    """First ``t >= t_start`` where the ray ``t * d`` from the origin meets ``g + offset``; ``inf`` if none.

    Sphere tracing: the gap between ray and surface closes at most at ``-dz + bound * |d_xy|`` per metre.
    """
    horizontal = np.sqrt(dx * dx + dy * dy)
    closing = -dz + linear[3] * horizontal
    if closing <= 1e-9:
        return np.inf
    t = t_start
    for _ in range(96):
        height, gx, gy = _terrain(t * dx, t * dy, linear, waves)
        gap = t * dz - height - offset
        if gap < 2e-3:
            if gap < 0.0:
                return t  # started below the surface (only at t_start, e.g. inside a curb face)
            rate = dz - gx * dx - gy * dy  # d(gap)/dt; one Newton step to polish
            return t - gap / rate if rate < -1e-9 else t
        t += gap / closing
        if t > t_max:
            return np.inf
    return np.inf


@numba.njit(cache=True)
def _rectangle_interval(dx, dy, region):
    """``(t_in, t_out, axis, side)`` of the ray's horizontal path through a raised rectangle."""
    cos, sin = region[R_COS], region[R_SIN]
    ox = -region[R_CX] * cos - region[R_CY] * sin
    oy = region[R_CX] * sin - region[R_CY] * cos
    lx = dx * cos + dy * sin
    ly = -dx * sin + dy * cos
    t_in, t_out = -np.inf, np.inf
    axis, side = 0, 1.0
    for a in range(2):
        origin = ox if a == 0 else oy
        direction = lx if a == 0 else ly
        half = region[R_HALF_L] if a == 0 else region[R_HALF_W]
        if abs(direction) < 1e-12:
            if abs(origin) > half:
                return np.inf, -np.inf, 0, 1.0
            continue
        t0 = (-half - origin) / direction
        t1 = (half - origin) / direction
        near, far = (t0, t1) if t0 < t1 else (t1, t0)
        if near > t_in:
            t_in = near
            axis = a
            side = -1.0 if direction > 0 else 1.0  # outward normal of the face entered, along the axis
        t_out = min(t_out, far)
    return t_in, t_out, axis, side


@numba.njit(cache=True)
def cast_ground(dx, dy, dz, t_max, linear, waves, raised):
    """Range and incidence cosine of the ray ``t * (dx, dy, dz)`` (unit) on the terrain with its slabs.

    Returns ``(t, cos_incidence)``; ``t = inf`` when the ray meets no ground within ``t_max``.
    """
    best = np.inf
    best_cos = 0.0
    for m in range(raised.shape[0]):
        region = raised[m]
        t_in, t_out, axis, side = _rectangle_interval(dx, dy, region)
        if t_in > t_out or t_out <= 0.0 or t_in >= best:
            continue
        t_entry = max(t_in, 0.0)
        height, gx, gy = _terrain(t_entry * dx, t_entry * dy, linear, waves)
        above = t_entry * dz - height
        if t_in > 0.0 and 0.0 <= above < region[R_HEIGHT]:
            # the ray meets the curb face it crosses
            if axis == 0:
                nx, ny = side * region[R_COS], side * region[R_SIN]
            else:
                nx, ny = -side * region[R_SIN], side * region[R_COS]
            best, best_cos = t_in, abs(nx * dx + ny * dy)
            continue
        if above < 0.0:
            continue  # the ray is under the terrain here: it hit the ground before this region
        t_top = _trace_terrain(dx, dy, dz, region[R_HEIGHT], t_entry, min(t_out, best, t_max), linear, waves)
        if t_top < best:
            height, gx, gy = _terrain(t_top * dx, t_top * dy, linear, waves)
            best, best_cos = t_top, abs(dz - gx * dx - gy * dy) / np.sqrt(1.0 + gx * gx + gy * gy)
    t_base = _trace_terrain(dx, dy, dz, 0.0, 0.0, min(best, t_max), linear, waves)
    if t_base < best:
        x, y = t_base * dx, t_base * dy
        covered = False
        for m in range(raised.shape[0]):
            region = raised[m]
            ox, oy = x - region[R_CX], y - region[R_CY]
            if abs(ox * region[R_COS] + oy * region[R_SIN]) <= region[R_HALF_L] and \
                    abs(-ox * region[R_SIN] + oy * region[R_COS]) <= region[R_HALF_W]:
                covered = True
                break
        if not covered:
            height, gx, gy = _terrain(x, y, linear, waves)
            best, best_cos = t_base, abs(dz - gx * dx - gy * dy) / np.sqrt(1.0 + gx * gx + gy * gy)
    return best, best_cos
