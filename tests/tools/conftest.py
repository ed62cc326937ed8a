"""Shared inputs of the tool tests: a tiny synthetic KITTI-format dataset and a tiny SECOND checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from ada3d.datasets.kitti_converter import prepare_kitti
from ada3d.datasets.synthetic import generate_kitti_dataset
from ada3d.registry import MODELS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_CONFIG = CONFIGS / "second" / "second_hv_secfpn_tiny_synthkitti-3d-3class.py"


@pytest.fixture(scope="session")
def synthkitti_root(tmp_path_factory) -> Path:
    """Four simulated frames, two of them in the val split, prepared like data/synthkitti."""
    root = tmp_path_factory.mktemp("synthkitti")
    generate_kitti_dataset(root, 4, seed=0, val_fraction=0.5)
    prepare_kitti(root, "kitti", "synthkitti", 1)
    return root


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Seeded initial weights of the tiny SECOND config, saved as an mmengine checkpoint."""
    import ada3d.models  # noqa: F401

    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TINY_CONFIG).model)
    path = tmp_path_factory.mktemp("checkpoints") / "tiny_second.pth"
    torch.save(dict(state_dict=model.state_dict(), meta={}), path)
    return path
