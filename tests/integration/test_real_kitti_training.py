"""End to end on real KITTI frames, as a user runs it: lay out the three KITTI training frames shipped in
demo/data/kitti (000001, 000008, 000076) as a KITTI root, prepare it with ``tools/create_data.py kitti``,
overfit them with ``tools/train.py`` on the real-KITTI config, then evaluate the checkpoint on the same frames
with ``tools/test.py``.

Only data, schedule and augmentation keys of configs/second/second_hv_secfpn_kitti-3d-3class.py are overridden
(data roots, one sample per iteration in a fixed order, epochs, no validation during training, logging, and the
random augmentations set to identity so the frames can be overfit), plus these model keys: SECOND at full
resolution takes about 5 s per frame per iteration on two CPU cores (15 s for a batch of three), too slow for CI,
so the model takes the tiny config's keys (configs/second/second_hv_secfpn_tiny_synthkitti-3d-3class.py):
``data_preprocessor.voxel_layer.{voxel_size,max_voxels}``, ``middle_encoder.{sparse_shape,base_channels,
output_channels,encoder_channels,encoder_paddings}``, ``backbone.{layer_nums,out_channels}`` and
``neck.{upsample_strides,out_channels}``. Heads, anchors, assigners, losses, optimizer and LR schedule are the
KITTI config's.

The frames have no image_2 PNGs in the repo, so the converter records KITTI's usual 375 x 1242 image size
(``--image-shape``): exact for 000001 and 000008, 4 px off for 000076 (374 x 1238).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from tests.integration.commands import DB_SAMPLER_KEY, REPO_ROOT, data_root_options, run, tool

KITTI_CONFIG = REPO_ROOT / "configs" / "second" / "second_hv_secfpn_kitti-3d-3class.py"
DEMO_KITTI = REPO_ROOT / "demo" / "data" / "kitti"
FRAMES = ("000001", "000008", "000076")
EPOCHS = 20  # one iteration per frame and epoch
CLASSES = ("Pedestrian", "Cyclist", "Car")
TINY_MODEL = {
    "model.data_preprocessor.voxel_layer.voxel_size": "[0.1,0.1,0.2]",
    "model.data_preprocessor.voxel_layer.max_voxels": "(30000,40000)",
    "model.middle_encoder.sparse_shape": "[21,800,704]",
    "model.middle_encoder.base_channels": 16,
    "model.middle_encoder.output_channels": 128,
    "model.middle_encoder.encoder_channels": "((16,),(32,32),(64,64),(64,64))",
    "model.middle_encoder.encoder_paddings": "((1,),(1,1),(1,1),((1,1,1),1))",
    "model.backbone.layer_nums": "[3,3]",
    "model.backbone.out_channels": "[64,128]",
    "model.neck.upsample_strides": "[2,4]",
    "model.neck.out_channels": "[64,64]",
}


def _cfg_options(data_root: Path) -> list[str]:
    """The KITTI config on ``data_root``: the frames in order, one per iteration, without augmentation."""
    pipeline = "train_dataloader.dataset.dataset.pipeline"  # RepeatDataset -> KittiDataset
    options = {
        **data_root_options(data_root),
        "train_dataloader.batch_size": 1,
        "train_dataloader.dataset.times": 1,
        "train_dataloader.sampler.shuffle": False,
        "train_cfg.max_epochs": EPOCHS,
        "train_cfg.val_begin": EPOCHS + 1,  # no validation during training
        "default_hooks.checkpoint.interval": EPOCHS,
        "default_hooks.logger.interval": 1,
        "log_processor.window_size": 1,  # log each iteration's loss, not a running mean
        "randomness.seed": 0,
        # identity augmentations: no pasted objects, no object noise, no flip, no global rotation or scaling
        f"{DB_SAMPLER_KEY}.rate": 0,
        f"{pipeline}.3.translation_std": "[0,0,0]",
        f"{pipeline}.3.rot_range": "[0,0]",
        f"{pipeline}.4.flip_ratio_bev_horizontal": 0,
        f"{pipeline}.5.rot_range": "[0,0]",
        f"{pipeline}.5.scale_ratio_range": "[1,1]",
    } | TINY_MODEL
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        options |= {f"{loader}.num_workers": 0, f"{loader}.persistent_workers": False}
    return ["--cfg-options", *(f"{key}={value}" for key, value in options.items())]


@pytest.fixture(scope="module")
def real_kitti(tmp_path_factory) -> Path:
    """A KITTI root holding the demo frames as both train and val split, prepared by tools/create_data.py."""
    root = tmp_path_factory.mktemp("kitti")
    for folder in ("velodyne", "label_2", "calib"):
        shutil.copytree(DEMO_KITTI / "training" / folder, root / "training" / folder)
    (root / "ImageSets").mkdir()
    for split in ("train", "val"):
        (root / "ImageSets" / f"{split}.txt").write_text("\n".join(FRAMES) + "\n")
    run(tool("create_data.py", "kitti", "--root", str(root), "--image-shape", "375", "1242"))
    return root


def _train_losses(work_dir: Path) -> list[dict]:
    """The per-iteration training scalars of the run's json log (vis_data/scalars.json)."""
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    entries = [json.loads(line) for line in scalars.read_text().splitlines()]
    return [entry for entry in entries if "loss" in entry]


def test_the_kitti_config_overfits_real_frames_and_its_checkpoint_evaluates(real_kitti, tmp_path):
    for name in ("kitti_infos_train.pkl", "kitti_infos_val.pkl", "kitti_dbinfos_train.pkl"):
        assert (real_kitti / name).is_file(), name
    assert sorted(p.stem for p in (real_kitti / "training" / "velodyne_reduced").iterdir()) == list(FRAMES)

    options = _cfg_options(real_kitti)
    work_dir = tmp_path / "train"
    run(tool("train.py", str(KITTI_CONFIG), "--work-dir", str(work_dir), *options))

    steps = _train_losses(work_dir)
    assert [step["iter"] for step in steps] == list(range(1, EPOCHS * len(FRAMES) + 1))
    assert all(math.isfinite(value) for step in steps for key, value in step.items() if key.startswith("loss"))
    # the frames come in a fixed order: iteration i trains on frame i % 3; compare each frame's loss with itself
    first, last = steps[: len(FRAMES)], steps[-len(FRAMES):]
    for frame, start, end in zip(FRAMES, first, last):
        assert end["loss"] < 0.75 * start["loss"], (frame, start["loss"], end["loss"])
    for key, ratio in (("loss", 0.5), ("loss_bbox", 0.3), ("loss_cls", 0.95)):
        assert sum(s[key] for s in last) < ratio * sum(s[key] for s in first), key

    metrics_file = tmp_path / "metrics.json"
    output = run(tool("test.py", str(KITTI_CONFIG), str(work_dir / f"epoch_{EPOCHS}.pth"),
                        "--work-dir", str(tmp_path / "test"), "--metrics-json", str(metrics_file), *options))
    written = json.loads(metrics_file.read_text())
    metrics = {name.removeprefix("Kitti metric/"): value for name, value in written.items()}
    expected = {f"{name}_{kind}_AP{points}_{level}" for name in (*CLASSES, "Overall")
                for kind in ("2D", "BEV", "3D", "AOS") for points in (11, 40) for level in ("easy", "moderate", "hard")}
    assert expected <= metrics.keys(), sorted(expected - metrics.keys())[:5]
    assert all(math.isfinite(value) and 0.0 <= value <= 100.0 for value in metrics.values())
    # 60 steps leave the Car scores low, so the AP itself is not asserted (0 after this run), only that it is a number
    assert all(math.isfinite(metrics[f"Car_BEV_AP{points}_{level}"]) for points in (11, 40)
               for level in ("easy", "moderate", "hard"))
    assert "Car AP40@0.70, 0.70, 0.70:" in output
