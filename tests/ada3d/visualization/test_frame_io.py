import numpy as np
import pytest

from ada3d.visualization import FrameView, GridGeometry, PruningStage
from ada3d.visualization.frame_io import load_frame_view, save_frame_view
from tests.ada3d.visualization.frames import RANGE, bev_stage_frame, lattice_points


def test_round_trip_keeps_every_field(tmp_path):
    view, bev = bev_stage_frame()
    importance_grid = GridGeometry((2.0, 2.0), RANGE)
    importance = np.random.default_rng(0).random(importance_grid.shape).astype(np.float32)
    view.stages.append(PruningStage("point", kept=view.points[:, 0] < 10, importance=importance,
                                    importance_grid=importance_grid))
    view.gt_boxes, view.gt_labels, view.class_names = np.ones((2, 7), np.float32), np.array([0, 1]), ("Car", "Cyc")
    view.pred_boxes, view.pred_scores = np.zeros((1, 7), np.float32), np.array([0.5], np.float32)

    loaded = load_frame_view(save_frame_view(view, tmp_path / "sub" / "frame.npz"))

    assert loaded.name == view.name and loaded.class_names == view.class_names
    for key in ("points", "gt_boxes", "gt_labels", "pred_boxes", "pred_scores"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(view, key))
    assert loaded.pred_labels is None
    assert [s.name for s in loaded.stages] == ["bev", "point"]
    np.testing.assert_array_equal(loaded.stages[0].coords, bev.coords)
    np.testing.assert_array_equal(loaded.stages[0].kept, bev.kept)
    assert loaded.stages[0].grid == bev.grid and loaded.stages[1].coords is None
    np.testing.assert_array_equal(loaded.stages[1].importance, importance)
    assert loaded.stages[1].importance_grid == importance_grid


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_frame_view(tmp_path / "nothing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match="text.npz: not a frame-view"):
        load_frame_view(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", points=lattice_points())
    with pytest.raises(ValueError, match="plain.npz: a frame-view file needs 'meta'"):
        load_frame_view(tmp_path / "plain.npz")
    path = save_frame_view(FrameView(points=lattice_points(), stages=[PruningStage("s", np.ones(400, bool))]),
                           tmp_path / "frame.npz")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files if key != "stage0_kept"}
    np.savez(tmp_path / "broken.npz", **arrays)
    with pytest.raises(ValueError, match="broken.npz: inconsistent"):
        load_frame_view(tmp_path / "broken.npz")
