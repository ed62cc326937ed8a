"""VoxelNet: stage wiring, the three forward modes, overfitting a real KITTI scan."""

from __future__ import annotations

import pytest
import torch

from ada3d.ops.iou3d import bev_iou
from ada3d.registry import MODELS
from tests.ada3d.models.frames import kitti_frame, voxel_batch
from tests.ada3d.models.test_configs import TINY, model_config


def test_stated_in_channels_must_match_the_previous_stage():
    config = model_config(TINY)
    config["backbone"]["in_channels"] = 256
    with pytest.raises(ValueError, match="backbone.in_channels = 256 but the middle_encoder produces 128"):
        MODELS.build(config)


@pytest.fixture(scope="module")
def frame_000008():
    points, sample = kitti_frame("000008")
    return points[points[:, 0] < 40], sample  # every labelled car lies within 35 m


def test_forward_modes_on_a_batch_with_an_empty_sample(frame_000008):
    torch.manual_seed(0)
    model = MODELS.build(model_config(TINY))
    points, sample = frame_000008
    inputs = voxel_batch([points, points[:0]], [0.1, 0.1, 0.2])
    empty_sample = type(sample)(metainfo=dict(sample_idx="empty"))
    empty_sample.gt_instances_3d = sample.gt_instances_3d[:0]

    outputs = model(inputs, mode="tensor")
    assert outputs.cls_scores[0].shape == (2, 18, 200, 176)
    losses = model(inputs, [sample, empty_sample], mode="loss")
    assert set(losses) == {"loss_cls", "loss_bbox", "loss_dir"} and all(torch.isfinite(v) for v in losses.values())
    model.eval()
    with torch.no_grad():
        results = model(inputs, [sample, empty_sample], mode="predict")
    predictions = results[0].pred_instances_3d
    assert predictions.bboxes_3d.shape[1] == 7 and len(predictions.bboxes_3d) <= 50
    assert len(predictions.scores_3d) == len(predictions.labels_3d) == len(predictions.bboxes_3d)

    del inputs["voxels"]["batch_size"]
    with pytest.raises(ValueError, match="batch_size"):
        model(inputs, mode="tensor")
    with pytest.raises(ValueError, match="mode must be"):
        model(voxel_batch([points], [0.1, 0.1, 0.2]), [sample], mode="train")


def recalibrate_batch_norm(model: torch.nn.Module, inputs: dict) -> None:
    """Set BN running statistics to the statistics of ``inputs`` (a cumulative average over one pass)."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    model.train()
    with torch.no_grad():
        model(inputs, mode="tensor")


def test_overfitting_one_real_scan_puts_boxes_on_the_cars(frame_000008):
    """The tiny SECOND learns KITTI frame 000008's six cars in a few dozen Adam steps."""
    torch.manual_seed(0)
    model = MODELS.build(model_config(TINY))
    points, sample = frame_000008
    inputs = voxel_batch([points], [0.1, 0.1, 0.2])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    history = []
    model.train()
    for _ in range(40):
        losses = model(inputs, [sample], mode="loss")
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append({key: value.item() for key, value in losses.items()})
    assert all(torch.isfinite(torch.tensor(list(step.values()))).all() for step in history)
    for key in ("loss_cls", "loss_bbox", "loss_dir"):
        assert history[-1][key] < 0.4 * history[0][key], key

    recalibrate_batch_norm(model, inputs)
    model.eval()
    with torch.no_grad():
        predictions = model(inputs, [sample], mode="predict")[0].pred_instances_3d
    gt_boxes = sample.gt_instances_3d.bboxes_3d
    assert (predictions.labels_3d == 2).all()
    best_iou = bev_iou(gt_boxes, predictions.bboxes_3d).max(dim=1).values
    assert (best_iou > 0.5).sum() >= 5, best_iou  # of the six cars
