"""Ada3DVoxelNet: the three training stages, what is dropped and recorded, loading a dense SECOND."""

from __future__ import annotations

import pytest
import torch
from mmengine import Config

from ada3d.benchmark.input_ceiling import keep_input_columns
from ada3d.models.adaptive.heatmap import centre_heatmap, importance_target
from ada3d.models.adaptive.height_compression import to_bev
from ada3d.models.adaptive.importance_predictor import importance_loss
from ada3d.models.adaptive.spatial_filter import keep_counts
from ada3d.models.detectors.ada3d_voxelnet import has_running_statistics
from ada3d.registry import MODELS
from tests.ada3d.models.frames import kitti_frame, voxel_batch
from tests.ada3d.models.test_configs import CONFIG_ROOT, TINY

STAGES = {s: CONFIG_ROOT / "ada3d" / f"ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage{s}.py" for s in (1, 2, 3)}


def build(stage: int, **adaptive) -> torch.nn.Module:
    config = Config.fromfile(STAGES[stage]).model.to_dict()
    config["adaptive"].update(adaptive)
    torch.manual_seed(0)
    return MODELS.build(config)


@pytest.fixture(scope="module")
def batch():
    points, sample = kitti_frame("000008")
    near = points[points[:, 0] < 35]  # every labelled object of 000008 lies within 35 m
    return voxel_batch([near, near[near[:, 1] > -5]], [0.1, 0.1, 0.2]), [sample, sample]


def detector_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("predictor.")}


def predictor_state(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.predictor.state_dict().items()}


def train_steps(model, inputs, samples, steps: int = 3) -> dict:
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(steps):
        losses = model(inputs, samples, mode="loss")
        optimizer.zero_grad()
        sum(losses.values()).backward()
        optimizer.step()
    return losses


def changed(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_stage1_trains_the_detector_keeps_everything_and_freezes_the_predictor(batch):
    model = build(1)
    inputs, samples = batch
    detector, predictor = detector_state(model), predictor_state(model)
    losses = train_steps(model, inputs, samples)
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_dir"}
    assert not changed(predictor, predictor_state(model))
    assert {k for k in changed(detector, detector_state(model)) if k.startswith("backbone.")}  # SparseSECOND trains
    records = model.last_pruning
    assert [r.stage for r in records] == ["encoder_layer1", "encoder_layer2", "bev"]
    for record in records:
        assert torch.equal(record.kept, record.occupied) and torch.equal(record.sites_before, record.sites_after)


def test_stage2_trains_only_the_predictor_towards_the_centre_heatmap(batch):
    model = build(2)
    inputs, samples = batch
    detector, predictor = detector_state(model), predictor_state(model)
    first = model(inputs, samples, mode="loss")
    losses = train_steps(model, inputs, samples, steps=5)
    assert set(losses) == {"loss_importance"} and losses["loss_importance"] < first["loss_importance"]
    assert not changed(detector, detector_state(model))  # weights and BatchNorm statistics
    assert changed(predictor, predictor_state(model))
    target = centre_heatmap([s.gt_instances_3d.bboxes_3d for s in samples], model.grid)
    assert target.shape[-2:] == model.grid.shape == (100, 88) and target.amax() == 1


def test_stage3_drops_top_k_columns_and_pixels_and_freezes_the_predictor(batch):
    model = build(3)
    inputs, samples = batch
    predictor = predictor_state(model)
    train_steps(model, inputs, samples, steps=1)
    assert not changed(predictor, predictor_state(model))
    model.eval()
    with torch.no_grad():
        results = model(inputs, samples, mode="predict")
    assert results[0].pred_instances_3d.bboxes_3d.shape[1] == 7
    ratios = dict(zip(["encoder_layer1", "encoder_layer2", "bev"], [*model.keep_ratios_3d, model.keep_ratio_bev]))
    assert all(ratio < 1 for ratio in ratios.values())  # the stage-3 config drops at every stage
    for record in model.last_pruning:
        occupied = record.occupied.flatten(1).sum(1)
        assert torch.equal(record.kept.flatten(1).sum(1), keep_counts(occupied, ratios[record.stage]))
        assert not (record.kept & ~record.occupied).any()
        assert all(after < before for before, after in zip(record.sites_before, record.sites_after))
    bev = model.encode_3d(inputs["voxels"])  # the 3D backbone: every occupied BEV pixel, the 3D records only
    assert [record.stage for record in model.last_pruning] == ["encoder_layer1", "encoder_layer2"]
    kept = model.drop_bev(bev)  # the start of the 2D backbone
    assert [record.stage for record in model.last_pruning] == ["encoder_layer1", "encoder_layer2", "bev"]
    bev_record = model.last_pruning[-1]
    assert bev.features.shape[0] == int(bev_record.occupied.sum())  # one BEV pixel per occupied cell
    assert kept.features.shape[0] == int(bev_record.kept.sum())  # one per kept cell
    model.drop_bev(bev)  # again: its record replaces the last one
    assert [record.stage for record in model.last_pruning] == ["encoder_layer1", "encoder_layer2", "bev"]


def test_norm_eval_fine_tunes_the_inference_forward_with_the_statistics_fixed(batch):
    inputs, samples = batch
    model = build(3, norm_eval=True)
    norms = [name for name, module in model.named_modules() if has_running_statistics(module)]
    assert any("SparsityPreserving" in type(model.get_submodule(n)).__name__ for n in norms)  # SP-BN counted
    assert any(isinstance(model.get_submodule(n), torch.nn.BatchNorm1d) for n in norms)  # the encoder's BN1d too
    statistics = {k: v for k, v in detector_state(model).items() if k.endswith(("running_var", "running_mean"))}
    model.train()
    assert not any(model.get_submodule(name).training for name in norms)
    assert model.backbone.training and not model.predictor.training
    with torch.no_grad():  # the training forward is the inference forward
        train_maps = model.encode_2d(model.encode_3d(inputs["voxels"]))
        model.eval()
        eval_maps = model.encode_2d(model.encode_3d(inputs["voxels"]))
    for train_map, eval_map in zip(train_maps, eval_maps):  # eval runs the neck sparse: the same map
        torch.testing.assert_close(train_map, eval_map.dense(), rtol=1e-5, atol=1e-5)
    before = detector_state(model)
    train_steps(model, inputs, samples, steps=1)
    after = detector_state(model)
    assert not changed(statistics, after)  # BN and SP-BN statistics fixed ...
    assert {k for k in changed(before, after) if k.startswith("backbone.")}  # ... their weights and the convs train
    default = build(3, norm_eval=False)
    default.train()
    assert all(default.get_submodule(name).training for name in norms if not name.startswith("predictor."))
    predictor_stage = build(2, norm_eval=True).train()  # the detector's norms only: stage 2 trains the predictor's
    assert all(predictor_stage.get_submodule(name).training for name in norms if name.startswith("predictor."))


def test_an_input_drop_runs_the_whole_encoder_on_the_kept_voxel_columns(batch):
    model = build(3, drop_3d_stages=("input", "encoder_layer2"), keep_ratios_3d=(0.5, 1.0), keep_ratio_bev=1.0)
    model.eval()
    voxels = batch[0]["voxels"]
    assert model.predictor.in_channels["input"] == model.middle_encoder.in_channels == 4  # reads the voxel features
    with torch.no_grad():
        bev = model.encode_3d(voxels)
        record = model.last_pruning[0]
        kept = keep_input_columns(voxels, record.kept, model.middle_encoder.sparse_shape)
        features = model.voxel_encoder(kept["voxels"], kept["num_points"])
        expected = to_bev(model.middle_encoder.encode(features, kept["coors"], kept["batch_size"]))
    assert [r.stage for r in model.last_pruning] == ["input", "encoder_layer2"]
    per_sample = torch.bincount(voxels["coors"][:, 0].long(), minlength=2)
    assert torch.equal(record.sites_before, per_sample)  # the stage saw every voxel ...
    assert torch.equal(record.sites_after, torch.bincount(kept["coors"][:, 0].long(), minlength=2))
    assert torch.equal(record.kept.flatten(1).sum(1), keep_counts(record.occupied.flatten(1).sum(1), 0.5))
    assert (record.sites_after < per_sample).all()  # ... and the stem only the kept columns' voxels
    assert torch.equal(bev.indices, expected.indices)
    torch.testing.assert_close(bev.features, expected.features)


def test_a_drop_after_the_stem_runs_the_stem_on_every_voxel_and_layer1_on_the_kept_columns(batch):
    model = build(3, drop_3d_stages=("conv_input",), keep_ratios_3d=(0.5,)).eval()
    voxels = batch[0]["voxels"]
    assert list(model.middle_encoder.drop_sites())[:3] == ["input", "conv_input", "encoder_layer1"]
    assert model.predictor.in_channels["conv_input"] == 16  # the stem's output channels
    rows = {}

    def count_rows(name):
        return lambda module, args: rows.__setitem__(name, args[0].features.shape[0])

    encoder = model.middle_encoder
    hooks = [encoder.conv_input.register_forward_pre_hook(count_rows("stem")),
             encoder.encoder_layers.encoder_layer1.register_forward_pre_hook(count_rows("layer1"))]  # fmt: skip
    with torch.no_grad():
        model.encode_3d(voxels)
    for hook in hooks:
        hook.remove()
    record = model.last_pruning[0]
    assert record.stage == "conv_input"
    assert rows["stem"] == len(voxels["coors"]) == int(record.sites_before.sum())  # submanifold: one site per voxel
    assert rows["layer1"] == int(record.sites_after.sum()) < rows["stem"]


def test_stage2_trains_the_input_adapter_with_the_shared_body(batch):
    model = build(2, drop_3d_stages=("input",), keep_ratios_3d=(0.5,))
    inputs, samples = batch
    adapter = {k: v.clone() for k, v in model.predictor.adapters["input"].state_dict().items()}
    losses = train_steps(model, inputs, samples, steps=2)
    assert set(losses) == {"loss_importance"} and len(model._importance) == 2  # the input and the BEV
    assert changed(adapter, model.predictor.adapters["input"].state_dict())


def test_set_keep_ratios_and_strategies(batch):
    model = build(3).eval()
    inputs, _ = batch
    with torch.no_grad():
        model.set_keep_ratios(keep_ratios_3d=(1.0, 1.0), keep_ratio_bev=0.25, strategy="distance")
        model.drop_bev(model.encode_3d(inputs["voxels"]))
        record = model.last_pruning[-1]
        assert torch.equal(model.last_pruning[0].kept, model.last_pruning[0].occupied)
        # nearest first: every kept cell is at least as near as every dropped occupied cell
        distance = model.grid.cell_centres().norm(dim=-1)
        for b in range(2):
            kept, dropped = record.kept[b], record.occupied[b] & ~record.kept[b]
            assert distance[kept].max() <= distance[dropped].min()
    with pytest.raises(ValueError, match="keep ratios must lie in"):
        model.set_keep_ratios(keep_ratio_bev=0.0)
    with pytest.raises(ValueError, match="strategy must be one of"):
        model.set_keep_ratios(strategy="largest")
    with pytest.raises(ValueError, match="one ratio per drop stage"):
        model.set_keep_ratios(keep_ratios_3d=(0.5,))


def test_a_dense_second_checkpoint_initialises_the_sparse_backbone():
    dense_config = Config.fromfile(TINY).model.to_dict()
    dense = MODELS.build(dense_config)
    model = build(1)
    result = model.load_state_dict(dense.state_dict(), strict=False)
    assert not [k for k in result.missing_keys if not k.startswith("predictor.")]
    conv = dense.backbone.blocks[1][3].weight  # [C_out, C_in, 3, 3]
    assert torch.equal(model.backbone.blocks[1][3].weight, conv.permute(0, 2, 3, 1))
    assert torch.equal(model.middle_encoder.conv_input[0].weight, dense.middle_encoder.conv_input[0].weight)


@pytest.mark.parametrize("footprint_floor", [0.0, 0.5])
def test_stage2_loss_is_the_mse_to_the_importance_target(batch, footprint_floor):
    model = build(2, footprint_floor=footprint_floor)
    inputs, samples = batch
    with torch.no_grad():
        loss = model(inputs, samples, mode="loss")["loss_importance"]
    boxes = [s.gt_instances_3d.bboxes_3d for s in samples]
    target = importance_target(boxes, model.grid, footprint_floor)
    assert model._importance and len(model._importance) == 3  # two 3D stages and the BEV
    expected = sum(importance_loss(importance, target) for importance in model._importance) / 3
    torch.testing.assert_close(loss, expected)
    if footprint_floor:
        assert not torch.equal(target, centre_heatmap(boxes, model.grid))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match=r"not drop sites of the encoder; its sites, in order: \['input', 'conv_in"):
        build(1, drop_3d_stages=("encoder_layer9",), keep_ratios_3d=(1.0,))
    with pytest.raises(ValueError, match="in network order"):
        build(1, drop_3d_stages=("encoder_layer2", "input"), keep_ratios_3d=(1.0, 1.0))
    with pytest.raises(ValueError, match="distinct"):
        build(1, drop_3d_stages=("input", "input"), keep_ratios_3d=(1.0, 1.0))
    with pytest.raises(ValueError, match="unknown adaptive settings"):
        build(1, keep_ratio=0.5)
    with pytest.raises(ValueError, match="train_stage must be one of"):
        build(1, train_stage="all")
    with pytest.raises(ValueError, match="norm_eval must be True or False"):
        build(3, norm_eval="yes")
    with pytest.raises(ValueError, match="footprint_floor must lie in"):
        build(2, footprint_floor=-0.1)


ADA3D_CONFIGS = sorted((CONFIG_ROOT / "ada3d").glob("*.py"))


@pytest.mark.parametrize("path", ADA3D_CONFIGS, ids=lambda path: path.stem)
def test_shipped_ada3d_configs_build_their_drop_stages(path):
    cfg = Config.fromfile(path)
    model = MODELS.build(cfg.model)
    adaptive = cfg.model.adaptive
    assert model.drop_3d_stages == tuple(adaptive.drop_3d_stages)
    assert set(model.predictor.input_names) == {*adaptive.drop_3d_stages, "bev"}
    # stage 3 fine-tunes with the statistics fixed (with batch statistics it lost AP on every benchmark)
    assert model.norm_eval == (adaptive.train_stage == "finetune")


@pytest.mark.parametrize("stage", [2, 3])
def test_input_drop_configs_differ_from_the_6e_configs_only_in_the_drop_stages_and_the_site_encoder(stage):
    name = f"second_hv_secfpn_6e_synthkitti-3d-3class_stage{stage}.py"
    base = Config.fromfile(CONFIG_ROOT / "ada3d" / f"ada3d_{name}").to_dict()
    variant = Config.fromfile(CONFIG_ROOT / "ada3d" / f"ada3d-input_{name}").to_dict()
    assert variant["model"]["adaptive"]["drop_3d_stages"] == ("input",)
    assert variant["model"]["adaptive"]["predictor"].pop("site_encoder_inputs") == ("input",)
    for config in (base, variant):
        for key in ("drop_3d_stages", "keep_ratios_3d"):
            config["model"]["adaptive"].pop(key)
    assert variant == base
