"""GraphedDetector: dense SECOND's and Ada3D's 3D and 2D parts in padded execution (on CPU: the runner's eager
replay, capture=False; on CUDA: captured graphs) give the eager kept sets and BEV pixels exactly and the eager
features and neck maps to rounding, relearn capacities when a frame overflows them, and Ada3D's drop stages never
sync with the host."""

from __future__ import annotations

import pytest
import torch
from mmengine.config import Config

from ada3d.models.adaptive.column_ops import drop_columns, drop_pixels
from ada3d.models.adaptive.height_compression import to_bev
from ada3d.models.detectors.graphed import GraphedDetector
from ada3d.registry import MODELS
from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from tests.ada3d.adaptive.host_syncs import forbid_host_syncs
from tests.ada3d.adaptive.test_padded_column_ops import padded
from tests.ada3d.models.frames import kitti_frame, voxel_batch
from tests.ada3d.models.test_ada3d_voxelnet import STAGES, build
from tests.ada3d.models.test_configs import TINY, model_config

VOXEL_SIZE = [0.1, 0.1, 0.2]  # the tiny configs'


@pytest.fixture(scope="module")
def voxels() -> dict:
    """Real KITTI frame 000008 within 35 m, and its left half: a batch of 2."""
    points, _ = kitti_frame("000008")
    near = points[points[:, 0] < 35]
    return voxel_batch([near, near[near[:, 1] > -5]], VOXEL_SIZE)["voxels"]


def on(voxels: dict, dtype: torch.dtype, device: str = "cpu", rows: torch.Tensor | None = None) -> dict:
    rows = slice(None) if rows is None else rows
    return dict(voxels=voxels["voxels"][rows].to(device, dtype), num_points=voxels["num_points"][rows].to(device),
                coors=voxels["coors"][rows].to(device), batch_size=voxels["batch_size"])  # fmt: skip


def ada3d(dtype: torch.dtype, device: str = "cpu", **adaptive) -> torch.nn.Module:
    """The tiny stage-3 Ada3D: drops after encoder_layer1 / 2 (0.6, 0.8) and BEV pixels (0.5), or ``adaptive``'s."""
    return build(3, **adaptive).to(device, dtype).eval()


INPUT_DROPS = dict(drop_3d_stages=("input", "encoder_layer2"), keep_ratios_3d=(0.5, 0.8))  # before the stem too


def dense_second(dtype: torch.dtype, device: str = "cpu") -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS.build(model_config(TINY)).to(device, dtype).eval()


CPU_TOLERANCE = 1e-12  # float64; the padded run may visit a kernel offset's pairs in another order
GPU_TOLERANCE = 1e-5  # float32; float atomics (pooling to the importance grid) and cuDNN may reorder sums


def assert_same_maps(maps: list, expected: list, tolerance: float) -> None:
    """Equal maps, dense or SparseBevMap (Ada3D's sparse neck; the graphed one keeps padding rows): compared dense."""
    assert len(maps) == len(expected)
    for out, reference in zip(maps, expected):
        assert type(out) is type(reference)
        if isinstance(out, SparseBevMap):
            out, reference = out.dense(), reference.dense()
        torch.testing.assert_close(out, reference, rtol=tolerance, atol=tolerance)


def check_ada3d(model, graphed: GraphedDetector, inputs: dict, tolerance: float) -> None:
    with torch.no_grad():
        bev = model.encode_3d(inputs)
        maps = model.encode_2d(bev)
        records = model.last_pruning
        graphed_bev = graphed.encode_3d(inputs)
        assert [r.stage for r in graphed.model.last_pruning] == list(model.drop_3d_stages)  # the 3D part's
        graphed_maps = graphed.encode_2d(graphed_bev)
    assert [r.stage for r in graphed.model.last_pruning] == [r.stage for r in records] == [*model.drop_3d_stages,
                                                                                           "bev"]
    for record, expected in zip(graphed.model.last_pruning, records):
        for name in ("occupied", "kept", "sites_before", "sites_after"):
            assert torch.equal(getattr(record, name), getattr(expected, name)), (record.stage, name)
        assert_same_maps([record.scores], [expected.scores], tolerance)
    assert torch.equal(graphed_bev.indices, bev.indices)  # the occupied BEV pixels, padding stripped
    assert_same_maps([graphed_bev.features], [bev.features], tolerance)
    assert_same_maps(graphed_maps, maps, tolerance)


def check_dense(model, graphed: GraphedDetector, inputs: dict, tolerance: float) -> None:
    with torch.no_grad():
        bev = model.encode_3d(inputs)
        maps = model.encode_2d(bev)
        graphed_bev = graphed.encode_3d(inputs)
        graphed_maps = graphed.encode_2d(graphed_bev)
    assert_same_maps([graphed_bev], [bev], tolerance)
    assert_same_maps(graphed_maps, maps, tolerance)


@pytest.mark.parametrize("stages", [("input", "encoder_layer2"), ("conv_input",)])
def test_padded_ada3d_with_an_early_drop_gives_the_eager_kept_sets_pixels_and_maps(voxels, stages):
    model = ada3d(torch.float64, drop_3d_stages=stages, keep_ratios_3d=(0.5, 0.8)[: len(stages)])
    graphed = GraphedDetector(model, capture=False)
    check_ada3d(model, graphed, on(voxels, torch.float64), CPU_TOLERANCE)
    assert [r.stage for r in graphed.model.last_pruning] == [*stages, "bev"]


def test_padded_input_drop_with_a_site_encoder_gives_the_eager_kept_sets_pixels_and_maps(voxels):
    predictor = dict(Config.fromfile(STAGES[3]).model.adaptive.predictor, site_encoder_inputs=("input",))
    model = ada3d(torch.float64, drop_3d_stages=("input",), keep_ratios_3d=(0.5,), predictor=predictor)
    assert list(model.predictor.site_encoders) == ["input"]
    check_ada3d(model, GraphedDetector(model, capture=False), on(voxels, torch.float64), CPU_TOLERANCE)


def test_padded_ada3d_gives_the_eager_kept_sets_pixels_and_maps(voxels):
    model = ada3d(torch.float64)
    graphed = GraphedDetector(model, capture=False)
    inputs = on(voxels, torch.float64)
    for _ in range(2):  # the second call reuses the first one's capacities
        check_ada3d(model, graphed, inputs, CPU_TOLERANCE)
    assert graphed.runner_3d().num_captures == 1 and graphed.runner_2d().num_captures == 1
    model.set_keep_ratios(keep_ratio_bev=0.7)
    check_ada3d(model, graphed, inputs, CPU_TOLERANCE)  # another BEV ratio: a 2D runner of its own, the same 3D one
    assert sorted(key[0] for key in graphed._runners) == ["2d", "2d", "3d"]
    model.set_keep_ratios(keep_ratios_3d=(1.0, 0.5), strategy="distance")
    check_ada3d(model, graphed, inputs, CPU_TOLERANCE)  # another 3D setting and strategy: runners of their own
    assert sorted(key[0] for key in graphed._runners) == ["2d", "2d", "2d", "3d", "3d"]


def test_without_output_copies_ada3d_hands_out_views_of_the_graph_buffers(voxels):
    model = ada3d(torch.float64)
    graphed = GraphedDetector(model, capture=False, copy_outputs=False)
    inputs = on(voxels, torch.float64)
    check_ada3d(model, graphed, inputs, CPU_TOLERANCE)  # the same kept sets, pixels and maps as with copies
    with torch.no_grad():
        views = graphed.encode_3d(inputs)
        copies = GraphedDetector(model, capture=False).encode_3d(inputs)
    assert views.features._base is not None and views.indices._base is not None  # rows sliced off the buffers
    assert copies.features._base is None and copies.indices._base is None


def test_padded_dense_second_gives_the_eager_bev_and_maps(voxels):
    model = dense_second(torch.float64)
    check_dense(model, GraphedDetector(model, capture=False), on(voxels, torch.float64), CPU_TOLERANCE)


def test_a_frame_overflowing_the_learned_capacities_is_rerun_exactly(voxels):
    model = ada3d(torch.float64)
    graphed = GraphedDetector(model, capture=False, margin=1.0)
    count = 3000  # both subsets fall into one size bucket
    near = torch.argsort(voxels["coors"][:, 3])[:count]  # dense voxels next to the sensor: few columns and outputs
    spread = torch.randperm(len(voxels["coors"]), generator=torch.Generator().manual_seed(0))[:count]
    check_ada3d(model, graphed, on(voxels, torch.float64, rows=near), CPU_TOLERANCE)
    runner = graphed.runner_3d()
    learned = next(iter(runner.captures.values())).capacities
    check_ada3d(model, graphed, on(voxels, torch.float64, rows=spread), CPU_TOLERANCE)
    assert len(runner.captures) == 1 and runner.num_captures == 2  # one relearning, from the overflowing frame
    relearned = next(iter(runner.captures.values())).capacities
    assert all(new >= old for new, old in zip(relearned, learned)) and relearned != learned


def test_ada3d_drop_stages_never_sync_with_the_host(voxels, monkeypatch):
    model = ada3d(torch.float64)
    inputs = on(voxels, torch.float64)
    stages = {}

    def keep(name, x):
        stages[name] = x
        return x

    with torch.no_grad():
        features = model.voxel_encoder(inputs["voxels"], inputs["num_points"])
        encoded = model.middle_encoder.encode(features, inputs["coors"], inputs["batch_size"], keep)
        bev = to_bev(encoded)
        stage_inputs = [padded(stages["encoder_layer2"], 40), padded(encoded, 40), padded(bev, 40)]
        plan = CapacityPlan([100_000] * 4)
        with padded_execution(plan), forbid_host_syncs(monkeypatch):
            model._drop("encoder_layer2", stage_inputs[0], 0.8, drop_columns)  # predictor, density prior, top-k
            model._drop("bev", to_bev(stage_inputs[1]), 0.5, drop_pixels)
            first_bev = model.last_pruning[-1]
            model._drop("bev", stage_inputs[2], 0.5, drop_pixels)  # its record replaces the first 'bev' record
    assert len(plan.counts) == 4  # three drops and the height compression took capacities
    assert [record.stage for record in model.last_pruning] == ["encoder_layer2", "bev"]
    records = [first_bev, model.last_pruning[-1]]
    assert [int(record.kept.sum()) for record in records] == [int(plan.counts[2]), int(plan.counts[3])]


def test_graphed_detector_refuses_training_mode_and_a_graphed_random_strategy(voxels):
    model = ada3d(torch.float64)
    with pytest.raises(ValueError, match="eval mode"):
        GraphedDetector(model.train())
    model.eval().set_keep_ratios(strategy="random")
    with pytest.raises(ValueError, match="strategy 'random'"):
        GraphedDetector(model).encode_3d(on(voxels, torch.float64))
    with pytest.raises(ValueError, match="hard voxels"):
        GraphedDetector(model, capture=False).encode_3d(dict(points=None, batch_size=1))


@pytest.mark.gpu
@pytest.mark.parametrize("detector", ["ada3d", "ada3d_input_drop", "dense"])
def test_cuda_graphs_replay_the_eager_outputs(voxels, detector):
    if detector == "dense":
        model, check = dense_second(torch.float32, "cuda"), check_dense
    else:
        drops = INPUT_DROPS if detector == "ada3d_input_drop" else {}
        model, check = ada3d(torch.float32, "cuda", **drops), check_ada3d
    graphed = GraphedDetector(model)
    inputs = on(voxels, torch.float32, "cuda")
    for _ in range(3):  # capture, then replays of the same graphs
        check(model, graphed, inputs, GPU_TOLERANCE)
    assert [runner.num_captures for runner in graphed._runners.values()] == [1, 1]


@pytest.mark.gpu
def test_cuda_graphs_recapture_an_overflowing_frame(voxels):
    model = ada3d(torch.float32, "cuda")
    graphed = GraphedDetector(model, margin=1.0)
    count = 3000
    near = torch.argsort(voxels["coors"][:, 3])[:count]
    spread = torch.randperm(len(voxels["coors"]), generator=torch.Generator().manual_seed(0))[:count]
    for rows in (near, spread, near):
        check_ada3d(model, graphed, on(voxels, torch.float32, "cuda", rows), GPU_TOLERANCE)
    assert graphed.runner_3d().num_captures == 2
