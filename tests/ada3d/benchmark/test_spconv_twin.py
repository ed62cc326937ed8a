"""spconv twins of our encoders, residual blocks included, compute what ours compute (needs spconv v2)."""

from __future__ import annotations

import pytest
import torch

from ada3d.benchmark.spconv_twin import to_spconv
from ada3d.benchmark.weights import seeded_encoder
from ada3d.models.middle_encoders import SparseBasicBlock, VoxelResBackBone8x
from tests.sparse_ops.cases import random_sparse_tensor

spconv_pytorch = pytest.importorskip("spconv.pytorch", reason="spconv v2 is a benchmark-only dependency")


@pytest.fixture
def one_thread():
    """spconv's CPU kernels race with more than one OpenMP thread (see ada3d/benchmark/spconv_twin.py)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_voxel_res_backbone_twin_matches_ours(one_thread, ieee_fp32):
    from ada3d.benchmark.spconv_twin import import_spconv

    spconv = import_spconv()
    # spconv's CUDA build (the GPU machine's) runs its implicit GEMM on CUDA tensors only; its CPU package on CPU.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shape = (41, 24, 24)
    encoder = seeded_encoder(
        lambda: VoxelResBackBone8x(5, shape, channels=(8, 8, 16, 16), output_channels=16), device, torch.float32
    ).eval()
    twin = to_spconv(encoder, spconv).eval()
    assert twin.sparse_tensor_type is spconv.SparseConvTensor
    block = twin.conv2[1]
    assert isinstance(block, SparseBasicBlock) and isinstance(block, spconv.SparseModule)
    assert isinstance(block.conv1, spconv.SubMConv3d) and block.conv1.indice_key == "res2"
    assert isinstance(twin.conv2, spconv.SparseSequential)
    assert twin.state_dict().keys() == encoder.state_dict().keys()

    x = random_sparse_tensor(shape, 2, 5, 0.04, seed=0, dtype=torch.float32)
    features, indices = x.features.to(device), x.indices.to(device)
    with torch.no_grad():
        ours = encoder(features, indices, 2)
        theirs = twin(features, indices, 2)
    assert ours.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5 * float(theirs.abs().max()))
