"""Every shipped config builds its model, and its schedule does what its comments say."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from ada3d.registry import MODELS

CONFIG_ROOT = Path(__file__).resolve().parents[3] / "configs"
SHIPPED = sorted(str(path.relative_to(CONFIG_ROOT)) for path in (CONFIG_ROOT / "second").glob("*.py"))
KITTI = CONFIG_ROOT / "second" / "second_hv_secfpn_kitti-3d-3class.py"
TINY = CONFIG_ROOT / "second" / "second_hv_secfpn_tiny_synthkitti-3d-3class.py"


def model_config(path: Path) -> dict:
    """``cfg.model``, with the data preprocessor left out: the model tests feed voxels directly."""
    model = Config.fromfile(path).model.to_dict()
    model["data_preprocessor"] = None
    return model


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_builds(name):
    cfg = Config.fromfile(CONFIG_ROOT / name)
    assert cfg.default_scope == "ada3d" and cfg.model.data_preprocessor.type == "Det3DDataPreprocessor"
    model = MODELS.build(model_config(CONFIG_ROOT / name))
    head = model.bbox_head
    assert head.num_anchors == 6 and head.in_channels == model.neck.out_channels[0]
    assert len(head.assigners) == 3 and head.test_cfg["nms_pre"] == 100
    assert model.backbone.in_channels == model.middle_encoder.out_channels
    grid = [round((high - low) / size) for low, high, size in zip(
        cfg.model.data_preprocessor.voxel_layer.point_cloud_range[:3],
        cfg.model.data_preprocessor.voxel_layer.point_cloud_range[3:],
        cfg.model.data_preprocessor.voxel_layer.voxel_size)]
    assert list(model.middle_encoder.sparse_shape) == [grid[2] + 1, grid[1], grid[0]]  # (z + 1, y, x)


@pytest.mark.skipif(MODELS.get("Det3DDataPreprocessor") is None,
                    reason="Det3DDataPreprocessor is not registered (it comes with the data pipeline)")
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_builds_with_its_data_preprocessor(name):
    model = MODELS.build(Config.fromfile(CONFIG_ROOT / name).model)
    assert type(model.data_preprocessor).__name__ == "Det3DDataPreprocessor"


def test_kitti_config_has_the_mmdet3d_second_shapes():
    model = MODELS.build(model_config(KITTI))
    assert model.middle_encoder.out_channels == 256 and model.bbox_head.in_channels == 512
    state = model.state_dict()
    assert state["bbox_head.conv_cls.weight"].shape == (18, 512, 1, 1)
    assert state["bbox_head.conv_reg.weight"].shape == (42, 512, 1, 1)
    assert state["bbox_head.conv_dir_cls.weight"].shape == (12, 512, 1, 1)
    assert state["neck.deblocks.1.0.weight"].shape == (256, 256, 2, 2)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(5.33e6, rel=0.01)


def learning_rates(path: Path, epoch_length: int) -> list[float]:
    """The learning rate of every training iteration under the config's optimizer and schedulers."""
    cfg = Config.fromfile(path)
    wrapper = build_optim_wrapper(torch.nn.Linear(2, 2), cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s), default_args=dict(optimizer=wrapper, epoch_length=epoch_length))
        for s in cfg.param_scheduler
    ]
    if cfg.train_cfg.type == "IterBasedTrainLoop":
        iterations = cfg.train_cfg.max_iters
    else:
        iterations = cfg.train_cfg.max_epochs * epoch_length
    rates = []
    for _ in range(iterations):
        rates.append(wrapper.get_lr()["lr"][0])
        wrapper.optimizer.step()  # no gradients: changes nothing, keeps the schedulers' step order
        for scheduler in schedulers:
            scheduler.step()
    return rates


def test_cyclic_schedule_rises_tenfold_then_decays():
    rates = learning_rates(KITTI, epoch_length=5)
    assert len(rates) == 200 and rates[0] == pytest.approx(0.0018)
    assert max(rates) == pytest.approx(0.018, rel=1e-3)
    assert 16 * 5 - 1 <= rates.index(max(rates)) <= 16 * 5  # the top at epoch 16
    assert rates[-1] < 0.0018 * 1e-2


def test_tiny_schedule_is_one_cycle_over_600_iterations():
    rates = learning_rates(TINY, epoch_length=1)
    assert len(rates) == 600
    assert max(rates) == pytest.approx(0.003, rel=1e-3) and 230 <= rates.index(max(rates)) <= 250
    assert rates[0] < 0.003 / 10 and rates[-1] < 0.003 / 1000


def test_tiny_pipeline_keeps_gt_sampling_and_flip_without_noise_or_global_rotation():
    cfg = Config.fromfile(TINY)
    steps = [step["type"] for step in cfg.train_dataloader.dataset.dataset.pipeline]
    assert steps[:4] == ["LoadPointsFromFile", "LoadAnnotations3D", "ObjectSample", "RandomFlip3D"]
    assert "ObjectNoise" not in steps and "GlobalRotScaleTrans" not in steps
    sampler = cfg.train_dataloader.dataset.dataset.pipeline[2]["db_sampler"]
    assert sampler["info_path"] == "data/synthkitti/kitti_dbinfos_train.pkl"
    assert cfg.randomness == dict(seed=0)
