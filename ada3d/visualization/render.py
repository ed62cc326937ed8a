"""Off-screen rendering of a :class:`~ada3d.visualization.scene.Scene` to an image (no window or display).

Filament renders through Vulkan or EGL; on a machine without a GPU it runs on Mesa's software driver
(packages ``libvulkan1 mesa-vulkan-drivers``). Colours come out as given: linear tone mapping, no
post-processing, so a point drawn in ``KEPT_COLOR`` has exactly that colour in the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ada3d.visualization.cameras import ChaseCamera, TopDownCamera, project_to_pixels
from ada3d.visualization.colors import BACKGROUND_COLOR
from ada3d.visualization.scene import Scene, rendering

TEXT_COLOR = (235, 235, 235)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


class SceneRenderer:
    """Renders scenes into ``height x width`` RGB images; one Filament renderer, reused for every image.

    Example::

        renderer = SceneRenderer(1600, 1000)
        renderer.save_png(build_scene(view), default_cameras(KITTI_POINT_CLOUD_RANGE)["chase"], "frame.png")
    """

    def __init__(self, width: int, height: int, font_size: int | None = None) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"image size must be at least 16 x 16 pixels, got {width} x {height}")
        self.width, self.height = width, height
        self.font_size = font_size or max(12, height // 50)
        self._renderer = rendering.OffscreenRenderer(width, height)
        view = self._renderer.scene.view
        view.set_color_grading(rendering.ColorGrading(rendering.ColorGrading.Quality.HIGH,
                                                      rendering.ColorGrading.ToneMapping.LINEAR))
        view.set_post_processing(False)
        self._renderer.scene.set_background([*BACKGROUND_COLOR, 1.0])

    def render(self, scene: Scene, camera: TopDownCamera | ChaseCamera, annotate: bool = True) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of ``scene``; with ``annotate``, the labels, caption and legend."""
        open3d_scene = self._renderer.scene
        open3d_scene.clear_geometry()
        for item in scene.items:
            open3d_scene.add_geometry(item.name, item.geometry, item.material)
        camera.apply(open3d_scene.camera, self.width, self.height)
        image = np.asarray(self._renderer.render_to_image()).copy()
        return self._annotate(image, scene) if annotate else image

    def save_png(self, scene: Scene, camera: TopDownCamera | ChaseCamera, path: str | Path,
                 annotate: bool = True) -> Path:
        """Render and write a PNG (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.render(scene, camera, annotate)).save(path)
        return path

    def _annotate(self, image: np.ndarray, scene: Scene) -> np.ndarray:
        canvas = Image.fromarray(image)
        draw = ImageDraw.Draw(canvas)
        font = _font(self.font_size)
        if scene.labels:
            positions = np.array([label.position for label in scene.labels])
            pixels, in_front = project_to_pixels(self._renderer.scene.camera, positions, self.width, self.height)
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
