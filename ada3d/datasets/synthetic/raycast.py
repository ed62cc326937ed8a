"""Casting every ray of one revolution against the terrain and the primitive table (numba, one core).

The scan is processed column by column (one azimuth, all lasers). Within a column every ray lies in one
vertical plane, so each shape is first intersected with that plane's horizontal line (once per column),
and then each laser only clips the interval to the shape's height. Shapes are culled twice: by azimuth
(each shape is listed in the 0.5 deg azimuth bins its bounding cylinder covers) and by elevation (each
shape knows the range of lasers that can reach it). A revolution (138k rays) against a few hundred
shapes takes 30-60 ms on one core, most of it on the terrain and its sidewalks.

Random decisions inside the caster (how deep a ray gets into foliage) come from a hash of
``(seed, ray, shape)``, so results do not depend on loop order or on other frames.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from ada3d.datasets.synthetic.ground import GroundModel, cast_ground
from ada3d.datasets.synthetic.primitives import (
    BOX,
    CX,
    CY,
    CYLINDER,
    DENSITY,
    ELLIPSOID,
    HALF_L,
    HALF_W,
    KIND,
    OBJECT,
    RADIUS,
    SIN,
    Z0,
    Z1,
)
from ada3d.datasets.synthetic.primitives import COS as COL_COS
from ada3d.datasets.synthetic.sensor import SensorConfig, ego_mask

AZIMUTH_BINS = 720
GROUND = -1  # ``hit`` value of rays that end on the terrain
NO_HIT = -2  # sky, beyond max range, or the recording car's own body


class RayHits(NamedTuple):
    """What each ray ``(beam, column)`` of one revolution met first.

    Attributes:
        range: ``[B, C]`` float32 distance to the hit (metres), ``inf`` without a hit.
        hit: ``[B, C]`` int32 index of the primitive hit, :data:`GROUND` or :data:`NO_HIT`.
        cos_incidence: ``[B, C]`` float32 cosine between the ray and the surface normal.
        rays_on_object: ``[num_objects]`` int64 rays whose line meets each labelled object (whatever is in
            front of it), within max range: the denominator of the occlusion fraction.
    """

    range: np.ndarray
    hit: np.ndarray
    cos_incidence: np.ndarray
    rays_on_object: np.ndarray


def cast_rays(sensor: SensorConfig, ground: GroundModel, primitives: np.ndarray, num_objects: int,
              seed: int) -> RayHits:
    """Cast one revolution of ``sensor`` into a scene.

    Args:
        sensor: the scanner.
        ground: the terrain.
        primitives: ``[N, NUM_COLUMNS]`` table of :mod:`~ada3d.datasets.synthetic.primitives`; the shapes of one
            object must be consecutive rows (the per-object ray count relies on it).
        num_objects: number of labelled objects (``primitives[:, OBJECT]`` lies in ``[-1, num_objects)``).
        seed: seed of the in-caster random decisions.
    """
    primitives = np.ascontiguousarray(primitives, dtype=np.float64)
    objects = primitives[:, OBJECT]
    if len(objects) and (objects.max() >= num_objects or objects.min() < -1):
        raise ValueError(f"primitive object indices must lie in [-1, {num_objects}), "
                         f"got {objects.min()}..{objects.max()}")
    elevations = sensor.elevations()
    bin_start, bin_items, beam_lo, beam_hi = _cull_tables(primitives, elevations, sensor.max_range)
    linear, waves, ripples, raised = ground.packed()
    ranges, hits, cosines, rays_on_object = _cast(
        primitives, bin_start, bin_items, beam_lo, beam_hi, np.tan(elevations), np.cos(elevations),
        np.sin(elevations), sensor.num_columns, ego_mask(sensor), linear, waves, ripples, raised, sensor.min_range,
        sensor.max_range, np.uint64(seed % 2**64), num_objects,
    )
    return RayHits(ranges, hits, cosines, rays_on_object)


def _cull_tables(primitives: np.ndarray, elevations: np.ndarray, max_range: float):
    """Azimuth bins (CSR: ``bin_start [AZIMUTH_BINS + 1]``, ``bin_items``) and laser ranges per shape."""
    distance = np.hypot(primitives[:, CX], primitives[:, CY])
    radius = primitives[:, RADIUS]
    near = np.maximum(distance - radius, 1e-3)
    far = distance + radius
    z0, z1 = primitives[:, Z0], primitives[:, Z1]
    top = np.arctan2(z1, np.where(z1 > 0, near, far))
    bottom = np.arctan2(z0, np.where(z0 > 0, far, near))
    beam_lo = np.searchsorted(-elevations, -top, side="left")
    beam_hi = np.searchsorted(-elevations, -bottom, side="right") - 1
    reachable = (beam_lo <= beam_hi) & (near < max_range)

    bin_width = 2 * np.pi / AZIMUTH_BINS
    encloses = distance <= radius + 1e-3
    half = np.arcsin(np.clip(radius / np.maximum(distance, 1e-9), 0.0, 1.0))
    centre = np.mod(np.arctan2(primitives[:, CY], primitives[:, CX]), 2 * np.pi)
    first = np.floor((centre - half) / bin_width).astype(np.int64)
    last = np.floor((centre + half) / bin_width).astype(np.int64)
    first = np.where(encloses, 0, first)
    last = np.where(encloses, AZIMUTH_BINS - 1, np.minimum(last, first + AZIMUTH_BINS - 1))
    index = np.flatnonzero(reachable)
    counts = (last - first + 1)[index]
    items = np.repeat(index, counts)
    offsets = np.arange(len(items)) - np.repeat(np.cumsum(counts) - counts, counts)
    bins = np.mod(np.repeat(first[index], counts) + offsets, AZIMUTH_BINS)
    order = np.lexsort((items, bins))  # by bin, then shape index (keeps an object's shapes together)
    bins, items = bins[order], items[order]
    bin_start = np.searchsorted(bins, np.arange(AZIMUTH_BINS + 1))
    return bin_start.astype(np.int64), items.astype(np.int64), beam_lo.astype(np.int64), beam_hi.astype(np.int64)


@numba.njit(cache=True)
def hash_uniform(seed, a, b):
    """A uniform number in ``(0, 1)`` from ``(seed, a, b)`` (splitmix64 finaliser)."""
    z = seed + np.uint64(a) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(b) * np.uint64(0xD1B54A32D192ED03)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (np.float64(z >> np.uint64(11)) + 0.5) / 9007199254740992.0


@numba.njit(cache=True)
def _horizontal_interval(prim, ca, sa):
    """Horizontal distances ``(u_in, u_out)`` where the column's line crosses the shape's footprint, and
    the cosine between the line and the side face it enters; an ellipsoid returns the centre and the
    horizontal semi-axis of its slice by the column's plane instead. ``u_in = inf`` when the line misses."""
    kind = int(prim[KIND])
    cx, cy = prim[CX], prim[CY]
    if kind == BOX:
        cos, sin = prim[COL_COS], prim[SIN]
        ox, oy = -cx * cos - cy * sin, cx * sin - cy * cos
        lx, ly = ca * cos + sa * sin, -ca * sin + sa * cos
        u_in, u_out, face_cos = -np.inf, np.inf, 0.0
        for a in range(2):
            origin = ox if a == 0 else oy
            direction = lx if a == 0 else ly
            half = prim[HALF_L] if a == 0 else prim[HALF_W]
            if abs(direction) < 1e-12:
                if abs(origin) > half:
                    return np.inf, -np.inf, 0.0
                continue
            t0, t1 = (-half - origin) / direction, (half - origin) / direction
            if t0 > t1:
                t0, t1 = t1, t0
            if t0 > u_in:
                u_in, face_cos = t0, abs(direction)
            u_out = min(u_out, t1)
        return u_in, u_out, face_cos
    along = cx * ca + cy * sa
    perp = -cx * sa + cy * ca
    radius = prim[HALF_L]
    if abs(perp) >= radius:
        return np.inf, -np.inf, 0.0
    chord = np.sqrt(radius * radius - perp * perp)
    if kind == CYLINDER:
        return along - chord, along + chord, chord / radius
    return along, chord, 0.0  # ellipsoid: centre of the slice and its horizontal semi-axis


@numba.njit(cache=True)
def _vertical_clip(u_in, u_out, z0, z1, tan_e):
    """Clip ``[u_in, u_out]`` to where the ray ``z = u * tan_e`` lies in ``[z0, z1]``; returns
    ``(u_in, u_out, entered_through_cap)``."""
    if tan_e > 1e-12:
        lo, hi = z0 / tan_e, z1 / tan_e
    elif tan_e < -1e-12:
        lo, hi = z1 / tan_e, z0 / tan_e
    else:
        if z0 <= 0.0 <= z1:
            return u_in, u_out, False
        return np.inf, -np.inf, False
    cap = lo > u_in
    return max(u_in, lo), min(u_out, hi), cap


@numba.njit(cache=True)
def _cast(prims, bin_start, bin_items, beam_lo, beam_hi, tan_e, cos_e, sin_e, num_columns, blocked,
          ground_linear, ground_waves, ground_ripples, ground_raised, min_range, max_range, seed, num_objects):
    num_beams = tan_e.shape[0]
    ranges = np.full((num_beams, num_columns), np.inf, dtype=np.float32)
    hits = np.full((num_beams, num_columns), NO_HIT, dtype=np.int32)
    cosines = np.zeros((num_beams, num_columns), dtype=np.float32)
    rays_on_object = np.zeros(num_objects, dtype=np.int64)
    best_t = np.empty(num_beams)
    best_hit = np.empty(num_beams, dtype=np.int32)
    best_cos = np.empty(num_beams)
    counted = np.empty(num_beams, dtype=np.int64)
    num_bins = bin_start.shape[0] - 1
    for c in range(num_columns):
        azimuth = 2.0 * np.pi * c / num_columns
        ca, sa = np.cos(azimuth), np.sin(azimuth)
        for b in range(num_beams):
            counted[b] = -1
            best_hit[b] = NO_HIT
            best_cos[b] = 0.0
            if blocked[b, c]:
                best_t[b] = -1.0  # marks the ray as blocked by the recording car
                continue
            t, cosine = cast_ground(cos_e[b] * ca, cos_e[b] * sa, sin_e[b], max_range, ground_linear,
                                    ground_waves, ground_ripples, ground_raised)
            best_t[b] = t
            if t < np.inf:
                best_hit[b], best_cos[b] = GROUND, cosine
        azimuth_bin = c * num_bins // num_columns
        for item in range(bin_start[azimuth_bin], bin_start[azimuth_bin + 1]):
            k = bin_items[item]
            prim = prims[k]
            h_in, h_out, face_cos = _horizontal_interval(prim, ca, sa)
            kind = int(prim[KIND])
            if h_in == np.inf or (kind != ELLIPSOID and h_in > h_out):
                continue
            obj = int(prim[OBJECT])
            density = prim[DENSITY]
            for b in range(beam_lo[k], beam_hi[k] + 1):
                if best_t[b] < 0.0:
                    continue
                if kind == ELLIPSOID:  # solve in the column plane (h_in = slice centre, h_out = half-chord)
                    radius = prim[HALF_L]
                    cz, rz = 0.5 * (prim[Z0] + prim[Z1]), 0.5 * (prim[Z1] - prim[Z0])
                    a2 = h_out * h_out
                    c2 = (rz * h_out / radius) ** 2
                    qa = 1.0 / a2 + tan_e[b] * tan_e[b] / c2
                    qb = -2.0 * h_in / a2 - 2.0 * tan_e[b] * cz / c2
                    qc = h_in * h_in / a2 + cz * cz / c2 - 1.0
                    disc = qb * qb - 4.0 * qa * qc
                    if disc <= 0.0:
                        continue
                    root = np.sqrt(disc)
                    u_in, u_out = (-qb - root) / (2.0 * qa), (-qb + root) / (2.0 * qa)
                    if u_in <= 0.0:
                        continue
                    gu = (u_in - h_in) / (radius * radius)
                    gz = (u_in * tan_e[b] - cz) / (rz * rz)
                    cosine = abs(gu * cos_e[b] + gz * sin_e[b]) / np.sqrt(gu * gu + gz * gz + 1e-30)
                else:
                    u_in, u_out, cap = _vertical_clip(h_in, h_out, prim[Z0], prim[Z1], tan_e[b])
                    if u_in > u_out or u_in <= 0.0:
                        continue
                    cosine = abs(sin_e[b]) if cap else face_cos * cos_e[b]
                t_in, t_out = u_in / cos_e[b], u_out / cos_e[b]
                if t_in < min_range or t_in > max_range:
                    continue
                if obj >= 0 and counted[b] != obj:
                    counted[b] = obj
                    rays_on_object[obj] += 1
                if density > 0.0:  # a volume: the ray stops at an exponentially distributed depth
                    u = hash_uniform(seed, b * num_columns + c, k)
                    t_in = t_in - np.log(u) / density
                    if t_in > t_out:
                        continue
                    cosine = hash_uniform(seed, b * num_columns + c, k + 7919)
                if t_in < best_t[b]:
                    best_t[b], best_hit[b], best_cos[b] = t_in, k, cosine
        for b in range(num_beams):
            if min_range <= best_t[b] <= max_range:
                ranges[b, c] = best_t[b]
                hits[b, c] = best_hit[b]
                cosines[b, c] = best_cos[b]
    return ranges, hits, cosines, rays_on_object
