"""Open3D off-screen renders (through the watched render process): colours read back at the pixels where
the camera puts each point."""

import numpy as np
import pytest

pytest.importorskip("open3d", reason="the Open3D renderer needs open3d (pip install 'ada3d[viz]')")

import matplotlib  # noqa: E402
from PIL import Image  # noqa: E402

from ada3d.visualization import DROPPED, KEPT, NOT_IN_STAGE, GridGeometry  # noqa: E402
from ada3d.visualization.cameras import TopDownCamera, default_cameras  # noqa: E402
from ada3d.visualization.colors import (  # noqa: E402
    BACKGROUND_COLOR,
    GT_BOX_COLOR,
    IMPORTANCE_COLORMAP,
    PRED_BOX_COLOR,
    STATUS_COLORS,
)
from ada3d.visualization.render_worker import RenderWorker, RenderWorkerError  # noqa: E402
from ada3d.visualization.scene import SceneOptions, build_scene  # noqa: E402
from tests.ada3d.visualization.frames import RANGE, bev_stage_frame, lattice_frame  # noqa: E402

SIZE = 400  # pixels; the top-down view of the 40 m square is 10 px/m
TOP = TopDownCamera((RANGE[0], RANGE[3]), (RANGE[1], RANGE[4]))


@pytest.fixture(scope="module")
def renderer(open3d_renders):
    with RenderWorker(SIZE, SIZE, timeout=60) as worker:
        yield worker


def _top_pixel(x, y) -> tuple[int, int]:
    """(row, col) of LiDAR (x, y) in a top-down image of RANGE: +x up, +y left."""
    return int((RANGE[3] - x) / (RANGE[3] - RANGE[0]) * SIZE), int((RANGE[4] - y) / (RANGE[4] - RANGE[1]) * SIZE)


def _rgb255(color) -> np.ndarray:
    return np.round(255 * np.asarray(color)).astype(int)


def _near(image, row, col, color, radius=2, atol=3) -> bool:
    patch = image[max(row - radius, 0) : row + radius + 1, max(col - radius, 0) : col + radius + 1].astype(int)
    return bool((np.abs(patch - _rgb255(color)).max(-1) <= atol).any())


def test_top_down_render_shows_kept_and_dropped_points_where_the_mask_says(renderer):
    view = lattice_frame()
    image = renderer.render(view, SceneOptions(point_size=6), TOP, annotate=False)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
    status = view.stages[0].point_status(view.points)
    for (x, y), point_status in zip(view.points[:, :2], status):
        np.testing.assert_allclose(image[_top_pixel(x, y)], _rgb255(STATUS_COLORS[point_status]), atol=1)
    assert set(status.tolist()) == {KEPT, DROPPED}
    np.testing.assert_allclose(image[_top_pixel(20.0, 0.0)], _rgb255(BACKGROUND_COLOR), atol=1)  # between points


def test_cells_of_a_bev_stage_colour_their_points(renderer):
    view, stage = bev_stage_frame()
    image = renderer.render(view, SceneOptions(point_size=6), TOP, annotate=False)
    status = stage.point_status(view.points)
    assert set(status.tolist()) == {KEPT, DROPPED, NOT_IN_STAGE}
    for (x, y), point_status in zip(view.points[:, :2], status):
        np.testing.assert_allclose(image[_top_pixel(x, y)], _rgb255(STATUS_COLORS[point_status]), atol=1)


def test_boxes_are_drawn_where_they_are(renderer):
    boxes = np.array([[10.0, 5.0, -1.0, 8.0, 4.0, 1.5, 0.0], [30.0, -10.0, -1.0, 4.0, 2.0, 1.5, np.pi / 2]])
    view = lattice_frame(gt_boxes=boxes[:1], pred_boxes=boxes[1:], pred_scores=[0.9])
    # bars 4 px wide, so their middle pixels are not blended with the background by anti-aliasing
    image = renderer.render(view, SceneOptions(point_size=2, box_width=0.4), TOP, annotate=False)
    for x, y in [(14.0, 4.0), (6.0, 6.0), (8.0, 3.0), (12.0, 7.0)]:  # GT edges x = 6 / 14, y = 3 / 7
        assert _near(image, *_top_pixel(x, y), GT_BOX_COLOR), (x, y)
    for x, y in [(29.0, -8.5), (31.0, -12.0), (31.0, -10.0), (30.0, -8.0)]:  # rotated: x in [29, 31], y in [-12, -8]
        assert _near(image, *_top_pixel(x, y), PRED_BOX_COLOR), (x, y)
    assert not _near(image, *_top_pixel(10.0, 5.0), GT_BOX_COLOR, radius=5)  # no edge at the centre


def test_importance_map_lies_under_the_points_the_right_way_round(renderer):
    view, stage = bev_stage_frame()
    grid = GridGeometry((4.0, 4.0), RANGE)
    stage.importance_grid, stage.importance = grid, np.zeros(grid.shape, np.float32)
    stage.importance[2, 7] = 1.0  # x in [28, 32), y in [-12, -8)
    stage.importance[8, 1] = 0.5  # x in [4, 8), y in [12, 16)
    image = renderer.render(view, SceneOptions(point_size=4), TOP, annotate=False)
    colormap = matplotlib.colormaps[IMPORTANCE_COLORMAP]
    for (x, y), value in [((30.0, -10.0), 1.0), ((6.0, 14.0), 0.5), ((30.0, 10.0), 0.0)]:
        np.testing.assert_allclose(image[_top_pixel(x, y)], _rgb255(colormap(value)[:3]), atol=3)
    status = stage.point_status(view.points)  # the points stay on top of the map
    assert status[(view.points[:, 0] == 29) & (view.points[:, 1] == -9)] == DROPPED
    np.testing.assert_allclose(image[_top_pixel(29.0, -9.0)], _rgb255(STATUS_COLORS[DROPPED]), atol=1)
    hidden = SceneOptions(point_size=4, show_importance=False)
    np.testing.assert_allclose(renderer.render(view, hidden, TOP, annotate=False)[_top_pixel(30.0, -10.0)],
                               _rgb255(BACKGROUND_COLOR), atol=1)


def test_chase_view_projects_points_where_they_are_drawn(renderer):
    view = lattice_frame()
    camera = default_cameras(RANGE)["chase"]
    image = renderer.render(view, SceneOptions(point_size=5), camera, annotate=False)
    near = view.points[:, 0] < 16  # far points crowd together in perspective
    pixels, in_front = renderer.project(view.points[near, :3], camera)
    assert in_front.all()
    colours = _rgb255([STATUS_COLORS[s] for s in view.stages[0].point_status(view.points)[near]])
    in_image = (pixels >= 0).all(1) & (pixels[:, 0] < SIZE) & (pixels[:, 1] < SIZE)
    assert in_image.sum() >= 40
    for (col, row), colour in zip(pixels[in_image], colours[in_image]):
        np.testing.assert_allclose(image[int(row), int(col)], colour, atol=1)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2


def test_annotation_and_png(renderer, tmp_path):
    view = lattice_frame(pred_boxes=[[20.0, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0]], pred_scores=[0.87],
                         pred_labels=[0], class_names=("Car",))
    scene = build_scene(view, SceneOptions())
    assert [label.text for label in scene.labels] == ["Car 0.87"]
    assert scene.legend[0][1] == STATUS_COLORS[KEPT]
    plain = renderer.render(view, SceneOptions(), TOP, annotate=False)
    annotated = np.asarray(Image.open(renderer.save_png(view, SceneOptions(), TOP, tmp_path / "a" / "frame.png")))
    changed = np.abs(annotated.astype(int) - plain).max(-1) > 0
    assert changed[:60, :60].any()  # caption and legend, top left
    row, col = _top_pixel(20.0, 0.0)  # the label sits on the box top, text above the anchor
    assert changed[row - 20 : row + 2, col - 40 : col + 40].any()
    assert not changed[-60:, -60:].any()


def test_errors_in_the_render_process_come_back_as_they_were(renderer):
    with pytest.raises(ValueError, match="color_by"):
        renderer.render(lattice_frame(), SceneOptions(color_by="colour"), TOP)


def test_a_render_past_the_timeout_is_retried_then_fails_with_what_happened():
    worker = RenderWorker(32, 32, timeout=0.01, retries=1)  # no child starts Open3D in 10 ms
    with pytest.warns(RuntimeWarning, match="retrying in a fresh render process"):
        with pytest.raises(RenderWorkerError, match=r"did not finish within 0.01 s, 2 attempt\(s\).*llvmpipe"):
            worker.render(lattice_frame(), SceneOptions(), TOP)
