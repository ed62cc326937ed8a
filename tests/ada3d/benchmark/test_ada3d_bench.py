"""benchmark_frame on a real KITTI scan: FLOP parts, drop-stage counts from last_pruning, fresh sparse inputs."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from mmengine.config import Config

from ada3d.benchmark.ada3d_bench import (
    benchmark_model,
    compute_table,
    density_table,
    fresh_input,
    gt_cell_masks,
    kept_pixels,
    profile_parts,
    run_to_json,
)
from ada3d.benchmark.detector_frames import kitti_frames
from ada3d.benchmark.input_ceiling import ceiling_table, input_ceiling, keep_input_columns, stem_voxel_share
from ada3d.benchmark.pruning_stats import StageCounts
from ada3d.registry import MODELS
from sparse_ops.tensor import SparseTensor
from tests.conftest import KITTI_DEMO_ROOT
from tests.tools.column_dropping_voxelnet import ColumnDroppingVoxelNet
from tests.tools.conftest import TINY_CONFIG

CLASSES = ["Pedestrian", "Cyclist", "Car"]
STAGE3 = TINY_CONFIG.parents[1] / "ada3d" / "ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage3.py"
CPU = torch.device("cpu")


def _tiny(model_type: str | None = None):
    torch.manual_seed(0)
    config = Config.fromfile(TINY_CONFIG).model.to_dict()
    if model_type:
        config["type"] = model_type
    return MODELS.build(config).eval()


@pytest.fixture(scope="module")
def frame():
    return kitti_frames(KITTI_DEMO_ROOT, CLASSES, ["000008"])[0]


def test_kitti_frames_read_scans_and_boxes_of_the_classes(frame):
    assert frame.name == "000008" and frame.batch["inputs"]["points"][0].shape[1] == 4
    labels = frame.batch["data_samples"][0].gt_instances_3d.labels_3d
    assert len(frame.gt_boxes[0]) == len(labels) > 0 and (labels == CLASSES.index("Car")).any()
    assert torch.equal(frame.gt_labels[0], labels)
    with pytest.raises(FileNotFoundError, match="KITTI frame 999999: .*velodyne/999999.bin not found"):
        kitti_frames(KITTI_DEMO_ROOT, CLASSES, ["999999"])


def test_dense_model_keeps_every_occupied_cell(frame):
    run = benchmark_model(_tiny(), [frame], "dense", "real-kitti", CPU, warmup=0, repeats=1)
    result = run.frames[0]
    assert result.flops["total"] == result.flops["3d"] + result.flops["2d"] + result.flops["head"]
    assert set(result.flops_by_module) == {"middle_encoder", "backbone", "neck", "bbox_head"}
    assert result.flops_by_module["bbox_head"] == result.flops["head"]
    (bev,) = result.stages
    assert bev.stage == "bev" and bev.kept == bev.occupied > 0 and bev.gt_dropped == 0 and bev.gt_occupied > 0
    assert result.latency["end_to_end"].median_ms > 0 and result.latency["3d"].peak_memory_mb is None
    assert "| dense | bev | 100.0% | 100.0% |" in density_table([run])
    # a dense BEV backbone spreads features over the whole map: every box centre has them, in both stages
    assert result.centres_seen == [result.centres] * 2 and result.centres == len(frame.gt_boxes[0]) > 0
    assert compute_table([run]).splitlines()[0].endswith("| GT centres with features (per BEV stage) |")
    assert compute_table([run]).splitlines()[2].endswith("| 100.0% / 100.0% |")
    assert run_to_json(run)["summary"]["gt_centres_with_features"] == [1.0, 1.0]


def test_dropping_model_reports_its_records(frame):
    model = _tiny("ColumnDroppingVoxelNet")
    assert isinstance(model, ColumnDroppingVoxelNet)
    model.set_keep_ratios(keep_ratio_bev=0.25, strategy="distance")
    dense = benchmark_model(_tiny(), [frame], "dense", "real-kitti", CPU, warmup=0, repeats=1).frames[0]
    run = benchmark_model(model, [frame], "drop", "real-kitti", CPU, warmup=0, repeats=1)
    (bev,) = run.frames[0].stages
    assert bev.occupied == dense.stages[0].occupied and bev.kept == round(0.25 * bev.occupied)
    # the kept quarter are the nearest columns: the GT cells dropped are exactly those of the far cars
    record = model.last_pruning[0]
    gt, _ = gt_cell_masks(model, frame, tuple(record.occupied.shape[1:]))
    assert bev.gt_dropped == int((gt & record.occupied & ~record.kept).sum()) > 0
    assert 0 < bev.gt_dropped_fraction < 1
    summary = run_to_json(run)["summary"]
    assert summary["stages"][0]["kept_of_occupied"] == pytest.approx(0.25, abs=0.01)
    assert summary["flops"]["3d"] == dense.flops["3d"] and summary["peak_memory_mb"]["3d"] is None
    assert not math.isnan(summary["median_ms"]["2d"])


def test_dropped_ground_truth_cells_are_counted_per_class(frame):
    model = _tiny("ColumnDroppingVoxelNet")
    model.set_keep_ratios(keep_ratio_bev=0.25, strategy="distance")
    run = benchmark_model(model, [frame], "drop", "real-kitti", CPU, warmup=0, repeats=1, class_names=CLASSES)
    (bev,) = run.frames[0].stages
    record = model.last_pruning[0]
    all_cells, per_class = gt_cell_masks(model, frame, tuple(record.occupied.shape[1:]), len(CLASSES))
    assert torch.equal(all_cells, gt_cell_masks(model, frame, tuple(record.occupied.shape[1:]))[0])
    for label, cells in enumerate(per_class):  # each class's cells are those of its own boxes
        boxes = frame.gt_boxes[0][frame.gt_labels[0] == label]
        only_class = dataclasses.replace(frame, gt_boxes=[boxes], gt_labels=[torch.full((len(boxes),), label)])
        assert torch.equal(cells, gt_cell_masks(model, only_class, tuple(cells.shape[1:]))[0])
        occupied = cells & record.occupied
        assert bev.gt_occupied_by_class[label] == int(occupied.sum())
        assert bev.gt_dropped_by_class[label] == int((occupied & ~record.kept).sum())
    car = CLASSES.index("Car")
    assert bev.gt_occupied_by_class[car] > 0 and 0 < bev.gt_dropped_fraction_by_class[car] < 1
    assert sum(bev.gt_dropped_by_class) >= bev.gt_dropped > 0  # a cell in boxes of two classes counts for both
    table = density_table([run])
    assert table.splitlines()[0].endswith("| GT cells dropped by class |")
    car_share = f"Car {100 * bev.gt_dropped_fraction_by_class[car]:.1f}% of {bev.gt_occupied_by_class[car]}"
    assert car_share in table.splitlines()[2]
    stage = run_to_json(run)["summary"]["stages"][0]
    assert stage["gt_dropped_fraction_by_class"]["Car"] == pytest.approx(bev.gt_dropped_fraction_by_class[car])
    assert run_to_json(run)["class_names"] == CLASSES
    assert "by class" not in density_table([benchmark_model(model, [frame], "drop", "real-kitti", CPU, warmup=0,
                                                            repeats=1)])


def test_cuda_graph_columns_time_both_parts_through_the_graphed_detector(frame):
    run = benchmark_model(_tiny(), [frame], "dense", "real-kitti", CPU, warmup=0, repeats=1, cuda_graphs=True)
    latency = run.frames[0].latency
    assert latency["3d_graphs"].median_ms > 0 and latency["2d_graphs"].median_ms > 0  # off CUDA: padded, no capture
    assert run.timed_parts()[-2:] == ("3d_graphs", "2d_graphs")
    assert "| 3D graph ms | 2D graph ms |" in compute_table([run])
    eager = benchmark_model(_tiny(), [frame], "dense", "real-kitti", CPU, warmup=0, repeats=1)
    assert "graph ms" not in compute_table([run, eager])  # columns only where every model has them
    assert set(run_to_json(run)["summary"]["median_ms"]) == {"3d", "2d", "end_to_end", "3d_graphs", "2d_graphs"}


def test_profile_parts_lists_the_ops_of_both_parts(frame):
    text = profile_parts(_tiny(), frame, CPU, rows=5)
    first, second = text.split("2D part (encode_2d):")
    assert first.startswith("3D part (encode_3d):") and "Self CPU" in first and "Self CPU" in second
    assert "aten::" in second  # the dense BEV backbone's convolutions
    graphed = profile_parts(_tiny(), frame, CPU, cuda_graphs=True, rows=5)  # off CUDA: padded execution, eager
    assert graphed.startswith("3D part (encode_3d) as CUDA graphs:") and "aten::" in graphed


def test_input_ceiling_keeps_whole_columns_of_the_drawn_cells(frame):
    model = _tiny()
    voxels = model.data_preprocessor(frame.batch, False)["inputs"]["voxels"]
    grid = tuple(model.middle_encoder.out_spatial_shape[-2:])
    keep_cells = torch.rand(1, *grid, generator=torch.Generator().manual_seed(0)) < 0.5
    kept = keep_input_columns(voxels, keep_cells, model.middle_encoder.sparse_shape)
    coors = voxels["coors"].long()
    expected = keep_cells[0, coors[:, 2] // 8, coors[:, 3] // 8]
    assert 0 < expected.sum() < len(coors) and torch.equal(kept["coors"], voxels["coors"][expected])
    assert torch.equal(kept["voxels"], voxels["voxels"][expected]) and kept["batch_size"] == voxels["batch_size"]
    points = input_ceiling(model, [frame], [1.0, 0.3], CPU, warmup=0, repeats=1, cuda_graphs=True)
    assert [p.share for p in points] == [1.0, 0.3] and points[0].voxels == points[0].total_voxels == len(coors)
    assert 0.1 < points[1].voxel_share < 0.5 and all(p.ms > 0 for p in points)
    assert "| 30% | " in ceiling_table(points) and "| 100% | 100.0% |" in ceiling_table(points)
    with pytest.raises(ValueError, match=r"shares must lie in \(0, 1\], got \[0.0\]"):
        input_ceiling(model, [frame], [0.0], CPU)


def test_stem_voxel_share_is_what_a_drop_before_the_stem_kept():
    layers = [StageCounts("encoder_layer1", 100, 60, 10, 6, 40, 2, 0), StageCounts("bev", 50, 30, 8, 6, 40, 2, 0)]
    assert stem_voxel_share(layers) == 1.0  # drops after the stem: it runs on every voxel
    assert stem_voxel_share([StageCounts("input", 200, 90, 10, 5, 40, 2, 0), *layers]) == pytest.approx(0.45)


def test_fresh_input_gives_sparse_tensors_an_empty_kernel_map_cache():
    x = SparseTensor(torch.ones(2, 1), torch.tensor([[0, 0, 0], [0, 1, 1]]), (4, 4), 1)
    x.kernel_maps.get_or_build("k", x.indices, x.spatial_shape, _geometry())
    copy = fresh_input(x)
    assert "k" in x.kernel_maps and "k" not in copy.kernel_maps and copy.features is x.features
    dense = torch.ones(1, 2, 3, 3)
    assert fresh_input(dense) is dense


def test_kept_pixels_are_the_ones_the_last_encode_2d_ran_on(frame):
    config = Config.fromfile(STAGE3).model.to_dict()
    torch.manual_seed(0)
    model = MODELS.build(config).eval()
    model.set_keep_ratios(strategy="random")  # a second drop would draw other cells
    with torch.no_grad():
        bev = model.encode_3d(model.data_preprocessor(frame.batch, False)["inputs"]["voxels"])
        model.encode_2d(fresh_input(bev))
        record = model.last_pruning[-1]  # what encode_2d kept
        kept = kept_pixels(model, bev)
        redrawn = model.drop_bev(fresh_input(bev))
    assert record.stage == "bev" and kept.features.shape[0] == int(record.kept.sum()) < bev.features.shape[0]
    b, y, x = kept.indices.long().unbind(1)
    assert record.kept[b, y, x].all()  # exactly the recorded cells
    assert not torch.equal(redrawn.indices, kept.indices)
    assert kept_pixels(_tiny(), bev) is not bev  # no 'bev' record: a fresh copy of the input


def _geometry():
    from sparse_ops.kmap.geometry import ConvGeometry

    return ConvGeometry.create(2, 3, 1, 1, 1, subm=True)
