"""A detector run turned into a FrameView: a randomly initialised tiny Ada3D model on the real KITTI scan 000008,
its stages checked against the model's pruning records, and their colours read back from a rendered PNG."""

import numpy as np
import pytest
import torch
from mmengine.config import Config

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.visualization import DROPPED, KEPT, NOT_IN_STAGE, load_kitti_frame
from ada3d.visualization.from_model import keep_ratios, load_model, predict_frame, stage_name
from tests.ada3d.visualization.conftest import REPO_ROOT, TINY_ADA3D_CONFIG, save_random_checkpoint
from tests.conftest import KITTI_DEMO_ROOT

TINY_SECOND_CONFIG = REPO_ROOT / "configs" / "second" / "second_hv_secfpn_tiny_synthkitti-3d-3class.py"
STAGES = ["3D input", "after encoder_layer1", "after encoder_layer2", "BEV"]


@pytest.fixture(scope="module")
def ada3d_run(tiny_ada3d_checkpoint):
    """``(model, class names, the frame, the frame with the model's output at score threshold 0)``."""
    model, class_names = load_model(str(TINY_ADA3D_CONFIG), str(tiny_ada3d_checkpoint))
    frame = load_kitti_frame(KITTI_DEMO_ROOT, 8)
    return model, class_names, frame, predict_frame(model, frame, class_names, score_threshold=0.0)


def test_stages_follow_the_pruning_records(ada3d_run):
    model, _, _, view = ada3d_run
    records = model.last_pruning
    assert [stage.name for stage in view.stages] == STAGES
    assert [record.stage for record in records] == ["encoder_layer1", "encoder_layer2", "bev"]
    voxel_input = view.stages[0]
    assert voxel_input.kept.all() and voxel_input.grid.ndim == 3
    assert len(voxel_input.coords) == records[0].sites_before[0]  # encoder_layer1 is submanifold: one site per voxel
    ratios = keep_ratios(model)
    adaptive = Config.fromfile(str(TINY_ADA3D_CONFIG)).model.adaptive  # what the stage-3 config sets
    assert ratios == {**dict(zip(adaptive.drop_3d_stages, adaptive.keep_ratios_3d)), "bev": adaptive.keep_ratio_bev}
    assert all(ratio < 1 for ratio in ratios.values())
    for stage, record in zip(view.stages[1:], records):
        occupied, kept = record.occupied[0].numpy(), record.kept[0].numpy()
        assert stage.grid.shape == occupied.shape == record.grid.shape
        assert len(stage.coords) == occupied.sum() and stage.kept.sum() == kept.sum()
        assert 0 < kept.sum() < occupied.sum()  # every stage drops something at these keep ratios
        np.testing.assert_array_equal(kept[tuple(stage.coords.T)], stage.kept)
        # the stage ranked its cells: their scores are the importance map, unoccupied cells NaN
        np.testing.assert_array_equal(np.isnan(stage.importance), ~occupied)
        np.testing.assert_allclose(stage.importance[occupied], record.scores[0].numpy()[occupied])
    assert view.stages[-1].kept.sum() == records[-1].sites_after[0]  # BEV sites are the kept pixels


def test_stage_names_say_where_a_stage_drops():
    names = [stage_name(stage) for stage in ("input", "encoder_layer2", "bev")]
    assert names == ["before the stem", "after encoder_layer2", "BEV"]


def test_a_point_has_the_status_of_its_bev_cell(ada3d_run):
    model, _, frame, view = ada3d_run
    grid: BevGrid = model.grid
    cells, inside = grid.cell_of(torch.from_numpy(frame.points[:, :2]))
    rows, cols = cells.numpy().T
    for stage, record in zip(view.stages[1:], model.last_pruning):
        occupied, kept = record.occupied[0].numpy()[rows, cols], record.kept[0].numpy()[rows, cols]
        expected = np.where(inside.numpy() & occupied, np.where(kept, KEPT, DROPPED), NOT_IN_STAGE)
        status = stage.point_status(view.points)
        np.testing.assert_array_equal(status, expected)
        assert {KEPT, DROPPED, NOT_IN_STAGE} <= set(status.tolist())


def test_predictions_keep_the_ground_truth_and_follow_the_threshold(ada3d_run):
    model, class_names, frame, everything = ada3d_run
    assert len(everything.pred_boxes) > 0
    assert everything.class_names[: len(frame.class_names)] == frame.class_names  # ground truth keeps its labels
    np.testing.assert_array_equal(everything.gt_labels, frame.gt_labels)
    assert {everything.class_names[label] for label in everything.pred_labels} <= set(class_names)
    threshold = float(np.median(everything.pred_scores))
    confident = predict_frame(model, frame, class_names, score_threshold=threshold)
    above = everything.pred_scores >= threshold
    np.testing.assert_allclose(confident.pred_scores, everything.pred_scores[above])
    np.testing.assert_allclose(confident.pred_boxes, everything.pred_boxes[above])
    with pytest.raises(ValueError, match="score_threshold"):
        predict_frame(model, frame, class_names, score_threshold=1.5)


def test_a_dense_model_shows_predictions_only(tmp_path):
    checkpoint = save_random_checkpoint(TINY_SECOND_CONFIG, tmp_path / "second.pth")
    model, class_names = load_model(str(TINY_SECOND_CONFIG), str(checkpoint))
    view = predict_frame(model, load_kitti_frame(KITTI_DEMO_ROOT, 8), class_names, score_threshold=0.0)
    assert view.stages == [] and len(view.pred_boxes) == len(view.pred_scores) == len(view.pred_labels) > 0


def test_points_in_dropped_cells_are_drawn_as_dropped(ada3d_run, open3d_renders, tmp_path):
    pytest.importorskip("open3d", reason="the Open3D renderer needs open3d (pip install 'ada3d[viz]')")
    from PIL import Image

    from ada3d.visualization.cameras import TopDownCamera
    from ada3d.visualization.colors import STATUS_COLORS
    from ada3d.visualization.render_worker import RenderWorker
    from ada3d.visualization.scene import SceneOptions

    model, _, _, view = ada3d_run
    stage = view.stage("BEV")
    x0, y0, _, x1, y1, _ = stage.grid.point_cloud_range
    width, height = int(round((y1 - y0) * 10)), int(round((x1 - x0) * 10))  # 10 px/m, the grid's aspect
    camera = TopDownCamera((x0, x1), (y0, y1))
    options = SceneOptions(stage="BEV", point_size=2, show_gt=False, show_pred=False, show_importance=False)
    with RenderWorker(width, height, timeout=120) as worker:
        path = worker.save_png(view, options, camera, tmp_path / "bev.png", annotate=False)
        pixels, _ = worker.project(view.points[:, :3], camera)
    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    # points at least 0.25 m inside their cell: no splat (2 px = 0.2 m) of another cell's point covers them
    offset = (view.points[:, :2] - (x0, y0)) / stage.grid.cell_size
    interior = (np.abs(offset - np.floor(offset) - 0.5) < 0.5 - 0.25 / stage.grid.cell_size[0]).all(1)
    interior &= ((offset >= 0) & (offset < stage.grid.shape[::-1])).all(1)  # inside the grid, so in the image
    status = stage.point_status(view.points)
    rng = np.random.default_rng(0)
    for value in (KEPT, DROPPED, NOT_IN_STAGE):
        chosen = np.flatnonzero(interior & (status == value))
        chosen = rng.choice(chosen, size=min(300, len(chosen)), replace=False)
        assert len(chosen) >= 100, value
        cols, rows = pixels[chosen].astype(int).T
        colours = image[rows, cols]
        np.testing.assert_allclose(colours, np.broadcast_to(np.round(255 * np.asarray(STATUS_COLORS[value])),
                                                             colours.shape), atol=1)
