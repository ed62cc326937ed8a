"""Off-screen rendering of a :class:`~ada3d.visualization.scene.Scene` to an image (no window or display).

Open3D's Filament renders through Vulkan; on a machine without a GPU or display it runs on Mesa's
software driver llvmpipe (Debian/Ubuntu packages ``libvulkan1 mesa-vulkan-drivers``). Colours come out as
given (linear tone mapping, no post-processing): a point drawn in ``KEPT_COLOR`` has that colour in the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ada3d.visualization.cameras import ChaseCamera, TopDownCamera, project_to_pixels
from ada3d.visualization.scene import Scene, configure_open3d_scene, rendering, show_in_open3d_scene

TEXT_COLOR = (235, 235, 235)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


_shared_renderer: dict[str, object] = {"renderer": None, "size": None}


def _offscreen_renderer(width: int, height: int) -> rendering.OffscreenRenderer:
    """The process's one Open3D off-screen renderer, recreated when the size changes.

    Open3D 0.20 aborts the process when an ``OffscreenRenderer`` is destroyed while another one lives
    ("destroying MaterialInstance ... still in use"), so every :class:`SceneRenderer` shares this one.
    """
    if _shared_renderer["size"] != (width, height):
        _shared_renderer["renderer"] = None  # the old one goes before the new one is made
        renderer = rendering.OffscreenRenderer(width, height)
        configure_open3d_scene(renderer.scene)
        _shared_renderer.update(renderer=renderer, size=(width, height))
    return _shared_renderer["renderer"]


class SceneRenderer:
    """Renders scenes into ``height x width`` RGB images (through one Open3D renderer per process, reused).

    Example::

        renderer = SceneRenderer(1600, 1000)
        renderer.save_png(build_scene(view), default_cameras(KITTI_POINT_CLOUD_RANGE)["chase"], "frame.png")
    """

    def __init__(self, width: int, height: int, font_size: int | None = None) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"image size must be at least 16 x 16 pixels, got {width} x {height}")
        self.width, self.height = width, height
        self.font_size = font_size or max(12, height // 50)

    def render(self, scene: Scene, camera: TopDownCamera | ChaseCamera, annotate: bool = True) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of ``scene``; with ``annotate``, the labels, caption and legend."""
        renderer = _offscreen_renderer(self.width, self.height)
        show_in_open3d_scene(scene, renderer.scene)
        camera.apply(renderer.scene.camera, self.width, self.height)
        image = np.asarray(renderer.render_to_image()).copy()
        return self._annotate(image, scene, camera) if annotate else image

    def project(self, points: np.ndarray, camera: TopDownCamera | ChaseCamera) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(col, row)`` ``[N, 2]`` of ``[N, 3]`` points in this renderer's images under ``camera``,
        and ``[N]`` bool: in front of the camera."""
        open3d_camera = _offscreen_renderer(self.width, self.height).scene.camera
        camera.apply(open3d_camera, self.width, self.height)
        return project_to_pixels(open3d_camera, points, self.width, self.height)

    def save_png(self, scene: Scene, camera: TopDownCamera | ChaseCamera, path: str | Path,
                 annotate: bool = True) -> Path:
        """Render and write a PNG (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.render(scene, camera, annotate)).save(path)
        return path

    def _annotate(self, image: np.ndarray, scene: Scene, camera: TopDownCamera | ChaseCamera) -> np.ndarray:
        canvas = Image.fromarray(image)
        draw = ImageDraw.Draw(canvas)
        font = _font(self.font_size)
        if scene.labels:
            positions = np.array([label.position for label in scene.labels])
            pixels, in_front = self.project(positions, camera)
            for label, (col, row), visible in zip(scene.labels, pixels, in_front):
                if visible and 0 <= col < self.width and 0 <= row < self.height:
                    draw.text((col, row), label.text, fill=_rgb255(label.color), font=font, anchor="mb",
                              stroke_width=2, stroke_fill=(0, 0, 0))
        line = int(self.font_size * 1.4)
        margin = self.font_size // 2
        draw.text((margin, margin), scene.caption, fill=TEXT_COLOR, font=font)
        for row, (text, color) in enumerate(scene.legend, 1):
            top = margin + row * line
            draw.rectangle([margin, top + 2, margin + self.font_size - 2, top + self.font_size], fill=_rgb255(color))
            draw.text((margin + int(self.font_size * 1.5), top), text, fill=TEXT_COLOR, font=font)
        return np.asarray(canvas)


def _rgb255(color: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * channel)) for channel in color)
