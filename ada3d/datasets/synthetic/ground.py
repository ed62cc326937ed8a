"""The terrain: a gently sloped, undulating height field with raised slabs (sidewalks behind curbs).

Height of the terrain at ``(x, y)`` (LiDAR frame, metres)::

    g(x, y) = base + sx * x + sy * y + sum_k a_k * sin(kx_k * x + ky_k * y + phase_k)   (waves)
                                     + sum_j b_j * sin(...)                               (ripples)

``base`` is chosen so that ``g(0, 0) = -sensor_height``: the scanner stands ``sensor_height`` above the
ground under it, as in KITTI where the ground is near ``z = -1.73``. Waves are long undulations (tens of
metres); ripples are short (metres) and only centimetres high. A raised region is an oriented rectangle
whose surface lies ``height`` above ``g`` (a sidewalk, 0.1-0.2 m); its outline is a vertical curb face.

The ray caster (numba, below) brackets a ray's hit on plane + waves with the plane alone (any hit lies
where the ray is within ``sum |a_k|`` of the plane), then refines it with Newton steps where the ray
descends faster than the waves can rise; a grazing ray is sphere-traced (steps the slope bound of the
waves keeps safe) until it is within 5 cm of the surface, then Newton takes over. The ripples, too small
to hide anything, enter through a few last Newton steps on the full surface. The origin must lie above
``g + sum |a_k|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# columns of GroundModel.raised
R_CX, R_CY, R_HALF_L, R_HALF_W, R_COS, R_SIN, R_HEIGHT = range(7)


def _sum_of_sines(terms: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    total = np.zeros(np.broadcast(x, y).shape)
    for amplitude, kx, ky, phase in terms:
        total = total + amplitude * np.sin(kx * x + ky * y + phase)
    return total


@dataclass(frozen=True)
class GroundModel:
    """Terrain of one scene.

    Attributes:
        base: constant term of ``g`` (metres).
        slope: ``(sx, sy)`` linear slope (metres per metre).
        waves / ripples: ``[K, 4]`` sine terms ``(amplitude m, kx rad/m, ky rad/m, phase rad)``.
        raised: ``[M, 7]`` raised rectangles ``(cx, cy, half_l, half_w, cos yaw, sin yaw, height)``.
    """

    base: float
    slope: tuple[float, float]
    waves: np.ndarray
    ripples: np.ndarray
    raised: np.ndarray

    @classmethod
    def create(cls, sensor_height: float, slope=(0.0, 0.0), waves=None, ripples=None, raised=None) -> GroundModel:
        """A terrain that passes ``sensor_height`` below the origin."""
        def table(rows, width):
            return np.zeros((0, width)) if rows is None else np.asarray(rows, dtype=np.float64).reshape(-1, width)

        waves, ripples, raised = table(waves, 4), table(ripples, 4), table(raised, 7)
        base = -sensor_height - float(_sum_of_sines(np.concatenate([waves, ripples]), 0.0, 0.0))
        return cls(base, (float(slope[0]), float(slope[1])), waves, ripples, raised)

    @property
    def wave_slope_bound(self) -> float:
        """Upper bound of the waves' slope (metres per metre)."""
        return float(np.sum(np.abs(self.waves[:, 0]) * np.hypot(self.waves[:, 1], self.waves[:, 2])))

    def smooth_height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """``g(x, y)`` for arrays of coordinates (metres)."""
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        plane = self.base + self.slope[0] * x + self.slope[1] * y
        return plane + _sum_of_sines(self.waves, x, y) + _sum_of_sines(self.ripples, x, y)

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

    def packed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(linear, waves, ripples, raised)`` for the numba caster; ``linear`` [5] = (base, sx, sy, wave slope
        bound, sum of wave amplitudes)."""
        linear = np.array([self.base, self.slope[0], self.slope[1], self.wave_slope_bound,
                           float(np.sum(np.abs(self.waves[:, 0])))])
        return (linear, np.ascontiguousarray(self.waves), np.ascontiguousarray(self.ripples),
                np.ascontiguousarray(self.raised))


@numba.njit(cache=True)
def _sines(x, y, terms):
    """``(sum, d/dx, d/dy)`` of sine terms at one point."""
    height, gx, gy = 0.0, 0.0, 0.0
    for k in range(terms.shape[0]):
        angle = terms[k, 1] * x + terms[k, 2] * y + terms[k, 3]
        height += terms[k, 0] * np.sin(angle)
        slope = terms[k, 0] * np.cos(angle)
        gx += slope * terms[k, 1]
        gy += slope * terms[k, 2]
    return height, gx, gy


@numba.njit(cache=True)
def _terrain(x, y, linear, waves):
    """``(g, dg/dx, dg/dy)`` of plane + waves at one point (no ripples)."""
    height, gx, gy = _sines(x, y, waves)
    return linear[0] + linear[1] * x + linear[2] * y + height, linear[1] + gx, linear[2] + gy


@numba.njit(cache=True)
def _trace_terrain(dx, dy, dz, offset, t_start, t_max, linear, waves):
    """First ``t >= t_start`` where the ray ``t * d`` from the origin meets ``g + offset``; ``inf`` if none
    within ``t_max`` (see the module docstring for the method)."""
    level = linear[0] + offset
    relative = dz - linear[1] * dx - linear[2] * dy  # the ray's descent relative to the plane part
    if relative >= 0.0:
        return np.inf
    t_first = (level + linear[4]) / relative
    t_last = (level - linear[4]) / relative
    horizontal = np.sqrt(dx * dx + dy * dy)
    bound = linear[3] * horizontal
    steep = -relative > 2.0 * bound
    t = max(t_start, level / relative if steep else t_first)  # a steep ray starts at its plane hit
    for step in range(64):
        if t > t_max or t > t_last + 1e-6:
            return np.inf
        height, gx, gy = _terrain(t * dx, t * dy, linear, waves)
        gap = t * dz - height - offset
        rate = dz - gx * dx - gy * dy  # d(gap)/dt
        if step == 0 and gap < 0.0 and t == t_start:
            return t  # starts under the surface (a ray entering a raised region below its top)
        if abs(gap) < 5e-3:
            return t - gap / rate if rate < -1e-9 else t
        if steep or (gap < 0.05 and rate < -1e-9):
            t -= gap / rate  # Newton: safe on a steep ray, and close to the surface on a grazing one
        else:
            t += gap / (bound - relative)
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
def _with_ripples(t, dx, dy, dz, offset, linear, waves, ripples):
    """Newton steps from a hit ``t`` on plane + waves (+ offset) to the full surface; returns
    ``(t, cos_incidence)``."""
    for _ in range(4):
        x, y = t * dx, t * dy
        height, gx, gy = _terrain(x, y, linear, waves)
        ripple, rx, ry = _sines(x, y, ripples)
        gx += rx
        gy += ry
        rate = dz - gx * dx - gy * dy
        gap = t * dz - height - ripple - offset
        if abs(gap) < 1e-3 or rate > -1e-9:
            break
        t -= gap / rate
    return t, abs(rate) / np.sqrt(1.0 + gx * gx + gy * gy)


@numba.njit(cache=True)
def cast_ground(dx, dy, dz, t_max, linear, waves, ripples, raised):
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
            best, best_cos = _with_ripples(t_top, dx, dy, dz, region[R_HEIGHT], linear, waves, ripples)
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
            best, best_cos = _with_ripples(t_base, dx, dy, dz, 0.0, linear, waves, ripples)
    return best, best_cos
