"""A camera image for each synthetic frame: the LiDAR points splatted into the virtual camera with a
z-buffer over a sky / ground backdrop, written as an 8-bit RGB PNG with nothing but zlib.

The image only shows where the labelled objects are (tools that draw 2D boxes need one); it is not a
photo-realistic rendering. It is drawn at a third of the resolution and scaled up, so it costs a few
milliseconds and a few tens of kilobytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from ada3d.datasets.kitti_files import KittiCalib
from ada3d.datasets.synthetic.layout import ASPHALT, MARKING, SIDEWALK, TERRAIN
from ada3d.datasets.synthetic.lidar import Scan
from ada3d.datasets.synthetic.primitives import DENSITY, OBJECT
from ada3d.structures import project_to_image, transform_points

DOWNSCALE = 3
_GROUND_COLOURS = {ASPHALT: (72, 72, 78), MARKING: (225, 225, 220), SIDEWALK: (150, 146, 140), TERRAIN: (96, 118, 64)}
_SKY_TOP, _SKY_HORIZON = np.array([95, 140, 200]), np.array([200, 215, 230])


def render_camera_image(scan: Scan, primitives: np.ndarray, calib: KittiCalib, image_shape=(375, 1242)) -> np.ndarray:
    """``[H, W, 3]`` uint8 view of ``scan`` through the camera of ``calib``."""
    height, width = image_shape
    small_h, small_w = -(-height // DOWNSCALE), -(-width // DOWNSCALE)
    canvas = _backdrop(calib, small_h, small_w)

    camera = transform_points(scan.points[:, :3].astype(np.float64), calib.lidar2cam)
    in_front = camera[:, 2] > 0.5
    pixels, depth = project_to_image(camera[in_front], calib.cam2img)
    u = np.floor(pixels[:, 0] / DOWNSCALE).astype(np.int64)
    v = np.floor(pixels[:, 1] / DOWNSCALE).astype(np.int64)
    colours = _point_colours(scan, primitives)[in_front]
    # each point also covers the pixel below it (the gap between two lasers), behind exact hits
    u, v = np.concatenate([u, u]), np.concatenate([v, v + 1])
    depth = np.concatenate([depth, depth + 0.5])
    colours = np.concatenate([colours, colours])
    inside = (u >= 0) & (u < small_w) & (v >= 0) & (v < small_h)
    flat = v[inside] * small_w + u[inside]
    order = np.lexsort((depth[inside], flat))
    first = np.unique(flat[order], return_index=True)[1]
    nearest = order[first]
    fog = np.clip(depth[inside][nearest] / 120.0, 0.0, 0.7)[:, None]
    shaded = colours[inside][nearest] * (1 - fog) + _SKY_HORIZON * fog
    canvas.reshape(-1, 3)[flat[nearest]] = shaded.astype(np.uint8)
    full = np.repeat(np.repeat(canvas, DOWNSCALE, axis=0), DOWNSCALE, axis=1)
    return np.ascontiguousarray(full[:height, :width])


def _backdrop(calib: KittiCalib, height: int, width: int) -> np.ndarray:
    """Sky above the horizon, dark ground below (``[h, w, 3]`` uint8, downscaled)."""
    far_ahead = transform_points(np.array([[1000.0, 0.0, 0.0]]), calib.lidar2cam)
    horizon = project_to_image(far_ahead, calib.cam2img)[0][0, 1] / DOWNSCALE
    rows = np.arange(height, dtype=np.float64)[:, None]
    blend = np.clip(rows / max(horizon, 1.0), 0.0, 1.0)
    sky = _SKY_TOP * (1 - blend) + _SKY_HORIZON * blend
    colour = np.where(rows < horizon, sky, np.array([55.0, 55.0, 58.0]))
    return np.broadcast_to(colour[:, None, :], (height, width, 3)).astype(np.uint8).copy()


def _point_colours(scan: Scan, primitives: np.ndarray) -> np.ndarray:
    """``[N, 3]`` float colours: ground by material, objects by a per-object paint, scenery by kind."""
    colours = np.empty((len(scan.points), 3))
    brightness = 0.6 + 0.8 * np.clip(scan.points[:, 3], 0.0, 0.5)
    ground = scan.primitive < 0
    for surface, colour in _GROUND_COLOURS.items():
        colours[ground & (scan.ground_class == surface)] = colour
    on_shape = ~ground
    rows = scan.primitive[on_shape]
    shape_colours = np.where(primitives[rows, DENSITY][:, None] > 0, np.array([58.0, 105.0, 48.0]),
                             np.array([168.0, 152.0, 132.0]))
    obj = primitives[rows, OBJECT].astype(np.int64)
    paint = np.stack([(obj * 97) % 200 + 40, (obj * 57) % 200 + 40, (obj * 131) % 200 + 40], 1).astype(np.float64)
    colours[on_shape] = np.where(obj[:, None] >= 0, paint, shape_colours)
    return np.clip(colours * brightness[:, None], 0, 255)


def write_png(path: str | Path, image: np.ndarray, level: int = 1) -> None:
    """Write an ``[H, W, 3]`` uint8 array as an RGB PNG (each row "Up"-filtered, then deflated at ``level``;
    level 1 is 6x faster than 6 and only 20 % larger on these renderings)."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: write_png needs an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    rows = image.reshape(height, width * 3)
    filtered = np.empty((height, width * 3 + 1), dtype=np.uint8)
    filtered[:, 0] = 2  # "Up": each byte minus the byte above it
    filtered[0, 1:] = rows[0]
    filtered[1:, 1:] = rows[1:] - rows[:-1]
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = [(b"IHDR", header), (b"IDAT", zlib.compress(filtered.tobytes(), level)), (b"IEND", b"")]
    with open(path, "wb") as file:
        file.write(b"\x89PNG\r\n\x1a\n")
        for tag, data in chunks:
            file.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data)))
