"""FlopCounter: hand-computed dense counts, sparse counts against brute-force pair counts, grouping."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from ada3d.benchmark.flops import FlopCounter, dense_conv_flops
from ada3d.registry import MODELS
from sparse_ops.nn import SparseConv2d, SparseConv3d, SparseSequential, SubMConv2d, SubMConv3d
from sparse_ops.tensor import SparseTensor
from tests.ada3d.models.frames import kitti_frame, voxel_batch
from tests.ada3d.models.test_configs import TINY, model_config


def _count(module: nn.Module, *inputs, dense_convs: str = "dense") -> FlopCounter:
    with torch.no_grad(), FlopCounter(module, dense_convs) as flops:
        module(*inputs)
    return flops


def test_dense_layers_match_hand_counts():
    # Conv2d 3 -> 5, 3x3, stride 2, padding 1 on [2, 3, 8, 10]: output [2, 5, 4, 5]
    assert _count(nn.Conv2d(3, 5, 3, stride=2, padding=1), torch.ones(2, 3, 8, 10)).total == 2 * (2 * 4 * 5) * 9 * 3 * 5
    # grouped: each output channel reads C_in / groups = 2 channels
    assert _count(nn.Conv2d(4, 8, 3, padding=1, groups=2), torch.ones(1, 4, 6, 6)).total == 2 * 36 * 9 * 2 * 8
    # ConvTranspose2d 4 -> 2, kernel 2, stride 2 on [1, 4, 3, 3]: each input position feeds a 2x2 window
    assert _count(nn.ConvTranspose2d(4, 2, 2, stride=2), torch.ones(1, 4, 3, 3)).total == 2 * 9 * 4 * 4 * 2
    assert _count(nn.Linear(10, 3), torch.ones(5, 7, 10)).total == 2 * 35 * 10 * 3
    with pytest.raises(ValueError, match="dense_convs must be one of"):
        FlopCounter(nn.Linear(1, 1), dense_convs="active")


def test_nonzero_inputs_count_only_pairs_with_a_non_zero_input():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.zeros(1, 2, 5, 5)
    x[0, 1, 2, 2] = 1.0  # centre: all 9 outputs of its window lie inside the map
    x[0, 0, 0, 0] = -1.0  # corner: 4 of its 9 window positions lie inside
    assert _count(conv, x, dense_convs="nonzero_inputs").total == 2 * (9 + 4) * 2 * 3
    assert _count(conv, x).total == 2 * 25 * 9 * 2 * 3
    transposed = nn.ConvTranspose2d(2, 1, 2, stride=2)
    assert _count(transposed, x, dense_convs="nonzero_inputs").total == 2 * 2 * 4 * 2 * 1
    with pytest.raises(ValueError, match="counting mode"):
        dense_conv_flops(conv, x, x, "sparse")


def _random_sites(shape: tuple[int, ...], count: int, batch_size: int, seed: int) -> torch.Tensor:
    generator = np.random.default_rng(seed)
    cells = [(b, *site) for b in range(batch_size) for site in itertools.product(*(range(s) for s in shape))]
    chosen = generator.choice(len(cells), size=count, replace=False)
    return torch.tensor([cells[i] for i in sorted(chosen)], dtype=torch.int32)


def _brute_force_pairs(sites: np.ndarray, spatial_shape, kernel, stride, padding, subm: bool) -> int:
    """(input site, output site) pairs by checking every output position against every input site."""
    if subm:  # outputs are the input sites, windows centred on them
        outputs = sites
        low, high = -(np.asarray(kernel) // 2), np.asarray(kernel) // 2
    else:
        out_shape = [(s + 2 * p - k) // st + 1 for s, k, st, p in zip(spatial_shape, kernel, stride, padding)]
        grid = np.array(list(itertools.product(*(range(s) for s in out_shape))))
        outputs = np.array([(b, *o) for b in np.unique(sites[:, 0]) for o in grid])
    pairs = 0
    for out in outputs:
        same_batch = sites[sites[:, 0] == out[0], 1:]
        if subm:
            offset = same_batch - out[1:]
            pairs += int(np.all((offset >= low) & (offset <= high), axis=1).sum())
        else:  # input i feeds output o through kernel position i + padding - o * stride in [0, k)
            position = same_batch + np.asarray(padding) - out[1:] * np.asarray(stride)
            pairs += int(np.all((position >= 0) & (position < np.asarray(kernel)), axis=1).sum())
    return pairs


@pytest.mark.parametrize(
    ("conv", "spatial_shape", "subm"),
    [
        (SubMConv2d(3, 4, 3), (7, 9), True),
        (SparseConv2d(3, 4, 3, stride=2, padding=1), (7, 9), False),
        (SparseConv2d(3, 4, 2, stride=2), (8, 8), False),
        (SubMConv3d(3, 4, 3), (4, 5, 6), True),
        (SparseConv3d(3, 4, 3, stride=(1, 2, 2), padding=(0, 1, 1)), (4, 5, 6), False),
    ],
)
def test_sparse_conv_counts_kernel_map_pairs(conv, spatial_shape, subm):
    sites = _random_sites(spatial_shape, 25, batch_size=2, seed=len(spatial_shape))
    x = SparseTensor(torch.randn(len(sites), 3), sites, spatial_shape, 2)
    pairs = _brute_force_pairs(
        sites.numpy(), spatial_shape, conv.kernel_size, conv.geometry.stride, conv.geometry.padding, subm
    )
    assert _count(conv, x).total == 2 * pairs * 3 * 4


def test_submanifold_convs_cost_less_than_strided_ones_on_the_same_sites():
    sites = _random_sites((10, 10), 30, batch_size=1, seed=0)
    x = SparseTensor(torch.randn(len(sites), 2), sites, (10, 10), 1)
    submanifold = _count(SubMConv2d(2, 2, 3), x).total
    regular = _count(SparseConv2d(2, 2, 3, padding=1), x).total  # stride 1: the active set dilates
    assert 2 * 30 * 4 <= submanifold < regular <= 2 * 30 * 9 * 4


def test_shared_kernel_maps_are_read_not_rebuilt():
    sites = _random_sites((6, 6), 12, batch_size=1, seed=1)
    x = SparseTensor(torch.randn(len(sites), 2), sites, (6, 6), 1)
    layers = SparseSequential(SubMConv2d(2, 2, 3, indice_key="a"), SubMConv2d(2, 2, 3, indice_key="a"))
    flops = _count(layers, x)
    assert flops.by_layer["0"] == flops.by_layer["1"] > 0
    assert flops.by_module == {"0": flops.by_layer["0"], "1": flops.by_layer["1"]}


def test_dense_voxelnet_groups_by_stage_and_matches_the_second_formula():
    torch.manual_seed(0)
    model = MODELS.build(model_config(TINY)).eval()
    points, _ = kitti_frame("000008")
    inputs = voxel_batch([points[points[:, 0] < 30]], [0.1, 0.1, 0.2])
    flops = _count(model, inputs)
    assert set(flops.by_module) == {"middle_encoder", "backbone", "neck", "bbox_head"}
    assert flops.total == sum(flops.by_module.values())
    # tiny SECOND backbone on the [1, 128, 100, 88] BEV map: stage 1 at stride 1 (128 -> 64, then 3 x 64 -> 64),
    # stage 2 at stride 2 (64 -> 128, then 3 x 128 -> 128), all 3x3
    expected = 2 * 9 * (100 * 88 * (128 * 64 + 3 * 64 * 64) + 50 * 44 * (64 * 128 + 3 * 128 * 128))
    assert flops.by_module["backbone"] == expected
    # the head's three 1x1 branches run as one stacked conv but count as themselves: 6 anchors per cell x
    # (3 classes + 7 box deltas + 2 direction bins) output channels over 64 + 64 = 128 input channels at 0.4 m
    assert flops.by_layer["bbox_head.conv_cls"] == 2 * 200 * 176 * 128 * 18
    assert flops.by_module["bbox_head"] == 2 * 200 * 176 * 128 * 6 * (3 + 7 + 2)
    # fewer points, fewer voxels: the sparse encoder does less work (the dense BEV backbone does not)
    half = voxel_batch([points[points[:, 0] < 30][::2]], [0.1, 0.1, 0.2])
    fewer = _count(model, half).by_module
    assert fewer["middle_encoder"] < flops.by_module["middle_encoder"] and fewer["backbone"] == expected
