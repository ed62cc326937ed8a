"""Padded execution (kmap/capacity.py): padding rows and fixed strided-output capacities change nothing
in the result, and overflowing a capacity is visible in the recorded counts."""

import pytest
import torch

from sparse_ops import SparseTensor
from sparse_ops.graphs import CudaGraphRunner
from sparse_ops.kmap.capacity import CapacityPlan, padded_execution
from sparse_ops.nn import SparseConv3d, SparseSequential, SubMConv3d
from tests.sparse_ops.cases import case_tensor


def _network() -> SparseSequential:
    torch.manual_seed(0)
    return SparseSequential(
        SubMConv3d(3, 8, 3, indice_key="subm1"),
        torch.nn.ReLU(),
        SparseConv3d(8, 8, 3, stride=2, padding=1, indice_key="down1"),
        SubMConv3d(8, 8, 3, indice_key="subm2"),
        SparseConv3d(8, 4, (3, 1, 1), stride=(2, 1, 1)),
    ).double()


def _padded(x: SparseTensor, extra_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x's features and indices with ``extra_rows`` padding rows (batch -1) mixed in between."""
    features = torch.cat([x.features, torch.randn(extra_rows, x.num_channels, dtype=x.features.dtype)])
    indices = torch.cat([x.indices, torch.full((extra_rows, x.indices.shape[1]), -1, dtype=torch.int32)])
    order = torch.randperm(features.shape[0], generator=torch.Generator().manual_seed(1))
    return features[order], indices[order]


def _fresh(x: SparseTensor) -> SparseTensor:
    """x without its cached kernel maps."""
    return SparseTensor(x.features, x.indices, x.spatial_shape, x.batch_size)


@pytest.fixture(scope="module")
def case():
    x = case_tensor(dict(spatial_shape=(9, 12, 10), batch_size=2, in_channels=3, density=0.2, seed=7))
    network = _network()
    with torch.no_grad():
        expected = network(x).dense()
    return x, network, expected


def test_padding_rows_and_exact_capacities_give_the_same_result(case):
    x, network, expected = case
    features, indices = _padded(x, 13)
    plan = CapacityPlan()
    with torch.no_grad(), padded_execution(plan):
        out = network(SparseTensor(features, indices, x.spatial_shape, x.batch_size)).dense()
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert len(plan.counts) == 2  # two strided maps, their exact output counts recorded


def test_fixed_capacities_with_headroom_give_the_same_result_and_report_counts(case):
    x, network, expected = case
    learned = CapacityPlan()
    with torch.no_grad(), padded_execution(learned):
        network(_fresh(x))
    counts = [int(c) for c in learned.counts]
    plan = CapacityPlan([c + 17 for c in counts])
    features, indices = _padded(x, 5)
    with torch.no_grad(), padded_execution(plan):
        y = network(SparseTensor(features, indices, x.spatial_shape, x.batch_size))
        out = y.dense()
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)
    assert [int(c) for c in plan.counts] == counts
    assert y.indices.shape[0] == counts[-1] + 17
    assert (y.indices[counts[-1]:] == -1).all()  # rows past the count are padding rows


def test_too_small_capacity_shows_in_the_counts(case):
    x, network, _ = case
    plan = CapacityPlan([3, 3])
    with torch.no_grad(), padded_execution(plan):
        y = network(_fresh(x))
    assert int(plan.counts[0]) > 3 and y.indices.shape[0] == 3


def test_plan_with_too_few_capacities_says_so(case):
    x, network, _ = case
    with pytest.raises(RuntimeError, match="more strided kernel maps"), padded_execution(CapacityPlan([100])):
        network(_fresh(x))


def test_padding_rows_are_rejected_outside_padded_execution(case):
    x, _, _ = case
    features, indices = _padded(x, 2)
    with pytest.raises(ValueError, match="outside the grid"):
        SparseTensor(features, indices, x.spatial_shape, x.batch_size)


def test_graph_runner_replays_padded_execution_eagerly_without_capture(case):
    """CudaGraphRunner(capture=False): the same buckets, learned capacities and padding, no graph (any device)."""
    x, network, expected = case

    def forward(features, indices, batch_size, scale):
        y = network(SparseTensor(features * scale, indices, x.spatial_shape, batch_size))
        return {"dense": y.dense(), "rows": [y.indices]}

    runner = CudaGraphRunner(forward, x.spatial_shape, capture=False)
    scale = torch.ones(x.indices.shape[0], 1, dtype=x.features.dtype)  # an extra row-aligned input
    with torch.no_grad():
        for _ in range(2):
            out = runner(x.features, x.indices, x.batch_size, scale)
            torch.testing.assert_close(out["dense"], expected, rtol=1e-12, atol=1e-12)
    assert runner.num_captures == 1 and out["rows"][0].shape[0] % 256 == 0  # a padded capacity
    dense = CudaGraphRunner(lambda grid: grid.sum(dim=1), capture=False)
    with torch.no_grad():
        torch.testing.assert_close(dense(expected), expected.sum(dim=1))
        with pytest.raises(ValueError, match="one input tensor"):
            dense(x.features, x.indices, x.batch_size)
        with pytest.raises(ValueError, match="extra input 0"):
            runner(x.features, x.indices, x.batch_size, scale[:-1])
    with pytest.raises(RuntimeError, match="inference"):
        runner(x.features, x.indices, x.batch_size, scale)
