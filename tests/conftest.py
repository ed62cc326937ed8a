"""Test-wide settings: GPU tests skip (with a reason) where no CUDA device exists."""

import pytest
import torch

KITTI_DEMO_ROOT = "demo/data/kitti"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
