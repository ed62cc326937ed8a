"""Colours shared by the Open3D scenes and the matplotlib figures (RGB in [0, 1])."""

from __future__ import annotations

import matplotlib
import numpy as np

from ada3d.visualization.frame_view import DROPPED, KEPT, NOT_IN_STAGE, FrameView

KEPT_COLOR = (0.20, 0.60, 1.00)  # blue
DROPPED_COLOR = (1.00, 0.30, 0.20)  # red
NOT_IN_STAGE_COLOR = (0.45, 0.45, 0.45)  # grey
GT_BOX_COLOR = (0.10, 0.90, 0.30)  # green
PRED_BOX_COLOR = (1.00, 0.85, 0.10)  # yellow
BACKGROUND_COLOR = (0.03, 0.03, 0.06)  # the 3D scenes' background
STATUS_COLORS = {KEPT: KEPT_COLOR, DROPPED: DROPPED_COLOR, NOT_IN_STAGE: NOT_IN_STAGE_COLOR}
STATUS_NAMES = {KEPT: "kept", DROPPED: "dropped", NOT_IN_STAGE: "not in stage"}
HEIGHT_COLORMAP, INTENSITY_COLORMAP, IMPORTANCE_COLORMAP = "viridis", "plasma", "inferno"

COLOR_MODES = ("stage", "height", "intensity")


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB [0, 1]; for colours Filament decodes as sRGB (textures, the background)."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def status_colors(status: np.ndarray) -> np.ndarray:
    """``[N]`` statuses (KEPT / DROPPED / NOT_IN_STAGE) -> ``[N, 3]`` colours."""
    table = np.array([STATUS_COLORS[NOT_IN_STAGE], STATUS_COLORS[DROPPED], STATUS_COLORS[KEPT]])
    return table[np.asarray(status, dtype=np.int64) + 1]


def scalar_colors(values: np.ndarray, colormap: str, low: float, high: float) -> np.ndarray:
    """``[N]`` values -> ``[N, 3]`` colours of ``colormap`` over ``[low, high]`` (clipped)."""
    scaled = (np.asarray(values, dtype=np.float64) - low) / max(high - low, 1e-9)
    return matplotlib.colormaps[colormap](np.clip(scaled, 0, 1))[:, :3]


def robust_range(values: np.ndarray) -> tuple[float, float]:
    """1st and 99th percentiles (so a few outliers do not wash out the colour scale); ``(0, 1)`` when empty."""
    if not len(values):
        return 0.0, 1.0
    low, high = np.percentile(values, [1, 99])
    return float(low), float(max(high, low + 1e-6))


def point_colors(view: FrameView, color_by: str, stage: int | str = 0) -> tuple[np.ndarray, list[tuple[str, tuple]]]:
    """Colours of ``view.points`` and the legend entries that explain them.

    Args:
        color_by: ``"stage"`` (kept / dropped / not in stage at ``stage``), ``"height"`` (z) or
            ``"intensity"`` (the fourth column).

    Returns:
        ``([N, 3] colours, [(text, rgb), ...])``.
    """
    if color_by == "stage":
        status = view.stage(stage).point_status(view.points)
        legend = [(f"{STATUS_NAMES[s]} ({int((status == s).sum()):,} pts)", STATUS_COLORS[s]) for s in (KEPT, DROPPED)]
        if (status == NOT_IN_STAGE).any():
            legend.append((f"{STATUS_NAMES[NOT_IN_STAGE]} ({int((status == NOT_IN_STAGE).sum()):,} pts)",
                           NOT_IN_STAGE_COLOR))
        return status_colors(status), legend
    if color_by == "height":
        column, colormap, what = 2, HEIGHT_COLORMAP, "z"
    elif color_by == "intensity":
        if view.points.shape[1] < 4:
            raise ValueError(f"frame {view.name!r}: colouring by intensity needs a fourth point column, "
                             f"the points have {view.points.shape[1]}")
        column, colormap, what = 3, INTENSITY_COLORMAP, "intensity"
    else:
        raise ValueError(f"color_by must be one of {COLOR_MODES}, got {color_by!r}")
    low, high = robust_range(view.points[:, column])
    colors = scalar_colors(view.points[:, column], colormap, low, high)
    legend = [(f"{what} {low:.2f}", tuple(scalar_colors([low], colormap, low, high)[0])),
              (f"{what} {high:.2f}", tuple(scalar_colors([high], colormap, low, high)[0]))]
    return colors, legend
