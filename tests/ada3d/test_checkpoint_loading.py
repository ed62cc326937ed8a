import numpy as np
import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import ada3d.engine  # noqa: F401  (registers the loader)


def test_mmengine_loads_checkpoints_holding_more_than_tensors(tmp_path):
    # what mmengine's Runner saves besides weights: numpy values, plain objects in the message hub
    checkpoint = {"state_dict": {"w": torch.ones(2)}, "meta": {"epoch": 3, "seed": np.int64(7), "hub": {"x": [1.0]}}}
    path = tmp_path / "epoch_3.pth"
    torch.save(checkpoint, path)
    loaded = _load_checkpoint(str(path), map_location="cpu")
    assert loaded["meta"]["seed"] == 7 and torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        _load_checkpoint(str(tmp_path / "nowhere.pth"), map_location="cpu")
