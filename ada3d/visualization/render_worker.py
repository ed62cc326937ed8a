"""Off-screen renders in a child process with a watchdog, so a stalled renderer cannot stall its caller.

Open3D 0.20's Filament renderer on Mesa's software Vulkan driver (llvmpipe) now and then stalls in one
frame: a render that takes 0.2 s takes two minutes or more, with llvmpipe's rasteriser thread busy in
shader code and the renderer waiting for it. Seen with a KITTI scan and its box bars in the scene, on a
later render of a process (never the first), after other work in between (writing a PNG is enough), in
about one run of three on a loaded two-core machine; the same scene renders in 0.2 s in the next
process. A :class:`RenderWorker` owns one child process with its own
:class:`~ada3d.visualization.render.SceneRenderer`. A render that takes longer than ``timeout`` seconds
(or a child that dies) ends the child; the render is retried in a fresh one (``retries`` times) and
then fails with a :class:`RenderWorkerError` that says what happened, instead of hanging.

The child builds the scene itself: it gets the picklable :class:`~ada3d.visualization.frame_view.FrameView`,
:class:`~ada3d.visualization.scene.SceneOptions` and camera (Open3D geometries do not pickle).

Example::

    with RenderWorker(1600, 1000) as worker:
        worker.save_png(view, SceneOptions(), default_cameras(KITTI_POINT_CLOUD_RANGE)["chase"], "frame.png")
"""

from __future__ import annotations

import multiprocessing
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ada3d.visualization.frame_view import FrameView

DEFAULT_TIMEOUT = 120.0  # seconds per render, the child's start-up included; a 1600 x 1000 KITTI scan takes ~1 s


class RenderWorkerError(RuntimeError):
    """The render child stalled (timed out) or died in every attempt."""


def _serve(connection, width: int, height: int, font_size: int | None) -> None:
    """The child's loop: ``(method, args)`` requests in; ``("ok", result)`` or ``("error", (exception,
    traceback text))`` out."""
    import open3d

    from ada3d.visualization.render import SceneRenderer
    from ada3d.visualization.scene import build_scene

    open3d.utility.set_verbosity_level(open3d.utility.VerbosityLevel.Error)
    renderer = SceneRenderer(width, height, font_size)
    while True:
        try:
            method, args = connection.recv()
        except EOFError:
            return
        try:
            if method == "render":
                view, options, camera, annotate = args
                reply = ("ok", renderer.render(build_scene(view, options), camera, annotate))
            else:
                reply = ("ok", renderer.project(*args))
        except Exception as error:  # noqa: BLE001 - handed to the parent, which raises it
            reply = ("error", (error, traceback.format_exc()))
        connection.send(reply)


class RenderWorker:
    """Renders :class:`FrameView` scenes into ``height x width`` RGB images in a watched child process.

    Args:
        width, height: image size in pixels.
        font_size: of the annotations (default: :class:`~ada3d.visualization.render.SceneRenderer`'s).
        timeout: seconds one render may take (the first one includes the child's start-up, a few
            seconds) before the child is killed.
        retries: further attempts, each in a fresh child, after a render stalled or the child died.

    Errors the child raises (a bad option, a frame without stages ...) come back as the same exception.
    """

    def __init__(self, width: int, height: int, font_size: int | None = None, timeout: float = DEFAULT_TIMEOUT,
                 retries: int = 1) -> None:
        if width < 16 or height < 16:
            raise ValueError(f"image size must be at least 16 x 16 pixels, got {width} x {height}")
        if timeout <= 0 or retries < 0:
            raise ValueError(f"timeout must be > 0 and retries >= 0, got timeout={timeout}, retries={retries}")
        self.width, self.height, self.font_size = width, height, font_size
        self.timeout, self.retries = timeout, retries
        self._context = multiprocessing.get_context("spawn")  # never fork a process that runs renderer threads
        self._process = None
        self._connection = None

    def render(self, view: FrameView, options, camera, annotate: bool = True) -> np.ndarray:
        """``[height, width, 3]`` uint8 image of ``view`` under ``options`` (a
        :class:`~ada3d.visualization.scene.SceneOptions`) seen by ``camera`` (see ``SceneRenderer.render``)."""
        return self._call("render", (view, options, camera, annotate), f"rendering frame {view.name!r}")

    def project(self, points: np.ndarray, camera) -> tuple[np.ndarray, np.ndarray]:
        """Pixel ``(col, row)`` ``[N, 2]`` of ``[N, 3]`` points under ``camera`` and ``[N]`` bool: in front."""
        return self._call("project", (np.asarray(points), camera), "projecting points")

    def save_png(self, view: FrameView, options, camera, path: str | Path, annotate: bool = True) -> Path:
        """Render and write a PNG (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.render(view, options, camera, annotate)).save(path)
        return path

    def close(self) -> None:
        """End the child process (a later call starts a new one)."""
        if self._process is not None:
            self._connection.close()  # the child's recv() ends, and with it the child
            self._process.join(10)
            self._stop()

    def __enter__(self) -> RenderWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()
        self._process = self._connection = None

    def _call(self, method: str, args: tuple, what: str) -> Any:
        attempts = self.retries + 1
        for attempt in range(1, attempts + 1):
            if self._process is None:
                parent_end, child_end = self._context.Pipe()
                self._process = self._context.Process(
                    target=_serve, args=(child_end, self.width, self.height, self.font_size), daemon=True)
                self._process.start()
                child_end.close()
                self._connection = parent_end
            self._connection.send((method, args))
            if self._connection.poll(self.timeout):
                try:
                    status, result = self._connection.recv()
                except EOFError:
                    self._process.join(10)
                    failure = f"the render child died (exit code {self._process.exitcode})"
                else:
                    if status == "error":
                        error, child_traceback = result
                        raise error from RuntimeError(f"in the render child:\n{child_traceback}")
                    return result
            else:
                failure = f"did not finish within {self.timeout:g} s"
            self._stop()
            if attempt < attempts:
                warnings.warn(f"Open3D render worker, {what}: {failure}; retrying in a fresh render process",
                              RuntimeWarning, stacklevel=3)
            else:
                raise RenderWorkerError(
                    f"Open3D render worker, {what}: {failure}, {attempts} attempt(s). Open3D's renderer now and "
                    f"then stalls or crashes on Mesa's software Vulkan driver (llvmpipe); without a GPU it needs "
                    f"libvulkan1 and mesa-vulkan-drivers. Raise the timeout on a slow machine")
