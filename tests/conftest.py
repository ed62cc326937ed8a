"""Test-wide settings: GPU tests skip (with a reason) where no CUDA device exists; without a GPU,
Triton kernels run in Triton's interpreter."""

import ctypes
import os
from pathlib import Path


def _has_cuda_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


# Set before torch is imported: importing torch may import Triton, which reads TRITON_INTERPRET.
if not _has_cuda_driver():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# the real KITTI frames committed with the repository (see its SOURCES.md)
KITTI_DEMO_ROOT = Path(__file__).resolve().parent.parent / "demo" / "data" / "kitti"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def ieee_fp32():
    """fp32 GEMMs without TF32 (ours and spconv alike); the flag is put back after."""
    allowed = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32 = allowed
