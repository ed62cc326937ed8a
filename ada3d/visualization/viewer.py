"""The interactive Open3D window: step through frames and pruning stages with the keyboard.

Keys (:data:`KEY_HELP`): ``n`` / ``p`` next / previous frame, ``]`` / ``[`` next / previous stage,
``c`` cycle the point colouring (stage, height, intensity), ``g`` / ``r`` / ``i`` toggle ground truth,
predictions, importance map, ``t`` switch between the chase and the top-down camera. The mouse orbits,
pans and zooms as in any Open3D window.

The window shows the same :class:`~ada3d.visualization.scene.Scene` as the PNGs of
:class:`~ada3d.visualization.render.SceneRenderer`; it needs a display.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ada3d.visualization.cameras import default_cameras
from ada3d.visualization.colors import COLOR_MODES
from ada3d.visualization.frame_view import FrameView
from ada3d.visualization.loading import FrameSource, default_point_cloud_range
from ada3d.visualization.scene import (
    SceneOptions,
    build_scene,
    configure_open3d_scene,
    rendering,
    show_in_open3d_scene,
)

KEY_HELP = ("n/p frame   ]/[ stage   c colouring   g ground truth   r predictions   i importance   "
            "t top/chase view")
CAMERAS = ("chase", "top")


@dataclass
class ViewerState:
    """What the window shows; :meth:`handle_key` changes it. Independent of Open3D, so it is testable."""

    num_frames: int
    frame: int = 0
    stage: int = 0
    color_by: str = "stage"
    show_gt: bool = True
    show_pred: bool = True
    show_importance: bool = True
    camera: str = "chase"

    def handle_key(self, key: str, num_stages: int) -> str | None:
        """Apply ``key`` (a name of :data:`KEY_HELP`) for a current frame with ``num_stages`` stages.

        Returns:
            ``"scene"`` when the scene must be rebuilt, ``"camera"`` when only the camera changed,
            None for keys without a meaning.
        """
        if key in ("n", "p"):
            step = 1 if key == "n" else -1
            self.frame = (self.frame + step) % self.num_frames
            return "scene"
        if key in ("]", "["):
            if num_stages == 0:
                return None
            self.stage = (self.stage + (1 if key == "]" else -1)) % num_stages
            self.color_by = "stage"
            return "scene"
        if key == "c":
            modes = COLOR_MODES if num_stages else tuple(mode for mode in COLOR_MODES if mode != "stage")
            current = self.color_by if self.color_by in modes else modes[-1]
            self.color_by = modes[(modes.index(current) + 1) % len(modes)]
            return "scene"
        toggles = {"g": "show_gt", "r": "show_pred", "i": "show_importance"}
        if key in toggles:
            setattr(self, toggles[key], not getattr(self, toggles[key]))
            return "scene"
        if key == "t":
            self.camera = CAMERAS[(CAMERAS.index(self.camera) + 1) % len(CAMERAS)]
            return "camera"
        return None

    def scene_options(self, view: FrameView, base: SceneOptions) -> SceneOptions:
        """``base`` with this state's choices for ``view`` (stage colouring falls back to height without stages)."""
        stage = min(self.stage, max(len(view.stages) - 1, 0))
        color_by = "height" if self.color_by == "stage" and not view.stages else self.color_by
        return replace(base, color_by=color_by, stage=stage, show_gt=self.show_gt, show_pred=self.show_pred,
                       show_importance=self.show_importance)


def has_display() -> bool:
    """Whether a window can open: always on macOS / Windows, with ``DISPLAY`` or ``WAYLAND_DISPLAY`` elsewhere."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_viewer(
    sources: Sequence[FrameSource],
    options: SceneOptions | None = None,
    point_cloud_range: Sequence[float] | None = None,
    size: tuple[int, int] = (1600, 1000),
) -> None:
    """Open the window on ``sources[0]`` and run until it is closed.

    Args:
        sources: the frames to step through (each loaded when first shown; the last four are kept).
        options: the starting :class:`SceneOptions` (point size, stage, colouring ...).
        point_cloud_range: what the cameras frame (:func:`~ada3d.visualization.cameras.default_cameras`);
            default: each frame's :func:`~ada3d.visualization.loading.default_point_cloud_range`.
        size: window ``(width, height)`` in pixels.

    Raises:
        RuntimeError: without a display (use :class:`~ada3d.visualization.render.SceneRenderer` / ``--out``).
    """
    from open3d.visualization import gui

    if not sources:
        raise ValueError("run_viewer needs at least one frame")
    if not has_display():
        raise RuntimeError("no display to open a window on (DISPLAY / WAYLAND_DISPLAY unset); "
                           "render PNGs instead with --out DIR")
    options = SceneOptions() if options is None else options
    state = ViewerState(num_frames=len(sources), color_by=options.color_by,
                        stage=options.stage if isinstance(options.stage, int) else 0)
    load = functools.lru_cache(maxsize=4)(lambda index: sources[index].load())
    key_names = {int(getattr(gui.KeyName, name)): text for name, text in
                 (("N", "n"), ("P", "p"), ("RIGHT_BRACKET", "]"), ("LEFT_BRACKET", "["), ("C", "c"), ("G", "g"),
                  ("R", "r"), ("I", "i"), ("T", "t"))}

    app = gui.Application.instance
    app.initialize()
    window = app.create_window("Ada3D viewer", *size)
    widget = gui.SceneWidget()
    widget.scene = rendering.Open3DScene(window.renderer)
    configure_open3d_scene(widget.scene)
    info = gui.Label("")
    window.add_child(widget)
    window.add_child(info)
    labels = []

    def layout(context) -> None:
        area = window.content_rect
        widget.frame = area
        preferred = info.calc_preferred_size(context, gui.Widget.Constraints())
        info.frame = gui.Rect(area.x + 8, area.y + 8, preferred.width, preferred.height)

    def apply_camera() -> None:
        area = window.content_rect
        cameras = default_cameras(point_cloud_range or default_point_cloud_range(load(state.frame)))
        cameras[state.camera].apply(widget.scene.camera, max(area.width, 1), max(area.height, 1))

    def refresh() -> None:
        view = load(state.frame)
        scene = build_scene(view, state.scene_options(view, options))
        show_in_open3d_scene(scene, widget.scene)
        for label in labels:
            widget.remove_3d_label(label)
        labels.clear()
        for text_label in scene.labels:
            label = widget.add_3d_label(text_label.position, text_label.text)
            label.color = gui.Color(*text_label.color)
            labels.append(label)
        legend = "\n".join(text for text, _ in scene.legend)
        info.text = f"[{state.frame + 1}/{len(sources)}] {scene.caption}\n{legend}\n{KEY_HELP}"
        window.set_needs_layout()

    def on_key(event) -> bool:
        if event.type != gui.KeyEvent.Type.DOWN or event.key not in key_names:
            return False
        change = state.handle_key(key_names[event.key], len(load(state.frame).stages))
        if change == "scene":
            refresh()
        elif change == "camera":
            apply_camera()
        return change is not None

    window.set_on_layout(layout)
    window.set_on_key(on_key)
    refresh()
    apply_camera()
    app.run()
