import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from ada3d.ops.voxelize import hard_voxelize
from ada3d.structures import Det3DDataSample
from ada3d.visualization import (
    DROPPED,
    KEPT,
    NOT_IN_STAGE,
    FrameView,
    GridGeometry,
    PruningStage,
    frame_view_from_data_sample,
    load_kitti_frame,
)
from ada3d.visualization.loading import KITTI_POINT_CLOUD_RANGE
from tests.ada3d.visualization.frames import RANGE, bev_stage_frame, lattice_points
from tests.conftest import KITTI_DEMO_ROOT


def test_grid_geometry_shape_cells_and_centres():
    grid = GridGeometry((0.05, 0.05, 0.1), KITTI_POINT_CLOUD_RANGE)
    assert grid.shape == (40, 1600, 1408)
    assert grid.bev.shape == (1600, 1408)
    points = np.array([[0.0, -40.0, -3.0], [70.39, 39.99, 0.99], [70.4, 0.0, 0.0], [1.0, 2.0, -5.0]])
    coords, inside = grid.cells_of(points)
    assert inside.tolist() == [True, True, False, False]
    assert coords[:2].tolist() == [[0, 0, 0], [39, 1599, 1407]]
    np.testing.assert_allclose(grid.cell_centres(coords[:1]), [[0.025, -39.975, -2.95]])


def test_grid_geometry_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cell_size"):
        GridGeometry((0.1,), RANGE)
    with pytest.raises(ValueError, match="point_cloud_range"):
        GridGeometry((0.1, 0.1), (0, 0, 0, -1, 1, 1))
    with pytest.raises(ValueError, match="point_cloud_range"):
        GridGeometry((0.1, 0.1), (0, 0, 1, 1))


def test_point_level_status():
    points = lattice_points()
    status = PruningStage("x", kept=points[:, 0] < 20).point_status(points)
    assert (status[points[:, 0] < 20] == KEPT).all() and (status[points[:, 0] >= 20] == DROPPED).all()


def test_bev_stage_status_follows_cells():
    view, stage = bev_stage_frame()
    status = stage.point_status(view.points)
    x, y = view.points[:, 0], view.points[:, 1]
    assert (status[x >= 32] == NOT_IN_STAGE).all()
    assert (status[(x < 32) & (y > 0)] == KEPT).all()
    assert (status[(x < 32) & (y < 0)] == DROPPED).all()


def test_voxel_stage_status_matches_a_dictionary_lookup_on_a_real_scan():
    points = load_kitti_frame(KITTI_DEMO_ROOT, 8).points
    voxel_size = (0.2, 0.2, 0.4)
    voxels = hard_voxelize(torch.from_numpy(points), voxel_size, KITTI_POINT_CLOUD_RANGE, 5, 5000)
    coords = voxels.coords.long().numpy()
    kept = np.random.default_rng(0).random(len(coords)) < 0.5
    stage = PruningStage("3D", kept=kept, coords=coords, grid=GridGeometry(voxel_size, KITTI_POINT_CLOUD_RANGE))
    status = stage.point_status(points)

    table = {tuple(c): k for c, k in zip(coords.tolist(), kept.tolist())}
    cells = np.floor((points[:, :3] - np.array(KITTI_POINT_CLOUD_RANGE[:3])) / voxel_size).astype(int)[:, ::-1]
    expected = np.array([KEPT if table.get(tuple(c)) else DROPPED if tuple(c) in table else NOT_IN_STAGE
                         for c in cells.tolist()])
    np.testing.assert_array_equal(status, expected)
    assert len(coords) == 5000 and (status == NOT_IN_STAGE).any()  # max_voxels left voxels out: not in stage


def test_stage_with_no_cells_has_no_point_in_it():
    stage = PruningStage("empty", kept=np.zeros(0, bool), coords=np.zeros((0, 2), int),
                         grid=GridGeometry((1.0, 1.0), RANGE))
    assert (stage.point_status(lattice_points()) == NOT_IN_STAGE).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kept": np.ones((2, 2), bool)}, "1-D mask"),
        ({"kept": np.ones(2, bool), "coords": np.zeros((2, 2), int)}, "grid geometry"),
        ({"kept": np.ones(2, bool), "coords": np.zeros((2, 3), int), "grid": GridGeometry((1, 1), RANGE)}, r"\[2, 2\]"),
        ({"kept": np.ones(2, bool), "coords": np.zeros((2, 2), int), "grid": GridGeometry((1, 1), RANGE)}, "duplicate"),
        ({"kept": np.ones(1, bool), "coords": [[40, 0]], "grid": GridGeometry((1, 1), RANGE)}, "outside the grid"),
        ({"kept": np.ones(1, bool), "importance": np.zeros((3, 3))}, "importance_grid"),
        ({"kept": np.ones(1, bool), "importance": np.zeros((3, 3)), "importance_grid": GridGeometry((1, 1), RANGE)},
         r"\(40, 40\)"),
    ],
)
def test_stage_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PruningStage("s", **kwargs)


def test_frame_view_validation():
    points = lattice_points()
    with pytest.raises(ValueError, match="points must be"):
        FrameView(points=points[:, :2])
    with pytest.raises(ValueError, match="gt_boxes"):
        FrameView(points=points, gt_boxes=np.zeros((2, 5)))
    with pytest.raises(ValueError, match="index class_names"):
        FrameView(points=points, gt_boxes=np.zeros((1, 7)), gt_labels=[3], class_names=("Car",))
    with pytest.raises(ValueError, match="pred_scores"):
        FrameView(points=points, pred_boxes=np.zeros((2, 7)), pred_scores=[0.5])
    with pytest.raises(ValueError, match="point mask of 3 entries for 400 points"):
        FrameView(points=points, stages=[PruningStage("s", kept=np.ones(3, bool))])
    view = FrameView(points=points, stages=[PruningStage("first", kept=np.ones(400, bool))])
    assert view.stage("first") is view.stage(0)
    with pytest.raises(KeyError, match="first"):
        view.stage("second")


def test_frame_view_from_data_sample():
    sample = Det3DDataSample(metainfo={"sample_idx": "000008"})
    sample.gt_instances_3d = InstanceData(bboxes_3d=torch.ones(2, 7), labels_3d=torch.tensor([0, 1]))
    sample.pred_instances_3d = InstanceData(bboxes_3d=torch.zeros(1, 7), labels_3d=torch.tensor([1]),
                                            scores_3d=torch.tensor([0.75]))
    view = frame_view_from_data_sample(torch.from_numpy(lattice_points()), sample, ("Car", "Pedestrian"))
    assert view.name == "000008"
    assert view.gt_boxes.shape == (2, 7) and view.gt_labels.tolist() == [0, 1]
    assert view.label_text(0) == "Pedestrian 0.75"
    only_points = frame_view_from_data_sample(lattice_points(), Det3DDataSample(), ())
    assert only_points.gt_boxes.shape == (0, 7) and only_points.pred_scores is None
