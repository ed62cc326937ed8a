"""tools/benchmark.py ada3d and tools/ada3d_sweep.py end to end on tiny synthetic data and the real demo scans."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from tests.conftest import KITTI_DEMO_ROOT
from tests.tools.column_dropping_voxelnet import ColumnDroppingVoxelNet
from tests.tools.conftest import TINY_CONFIG


def _load_tool(name: str):
    spec = importlib.util.spec_from_file_location(name, Path("tools") / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


benchmark_cli, sweep_cli = _load_tool("benchmark"), _load_tool("ada3d_sweep")
FAST = ["--warmup", "0", "--repeats", "1"]


@pytest.fixture(scope="module")
def dropping_config(tmp_path_factory) -> Path:
    """The tiny SECOND as a ColumnDroppingVoxelNet keeping a quarter of the occupied BEV cells."""
    assert ColumnDroppingVoxelNet.__name__  # imported: registered
    path = tmp_path_factory.mktemp("configs") / "tiny_dropping.py"
    path.write_text(f"_base_ = [{str(TINY_CONFIG)!r}]\n"
                    "model = dict(type='ColumnDroppingVoxelNet', adaptive=dict(keep_ratio_bev=0.25))\n")
    return path


def test_benchmark_ada3d_compares_dense_and_dropping_models(tmp_path, capsys, synthkitti_root, tiny_checkpoint,
                                                            dropping_config):
    report, numbers = tmp_path / "bench.md", tmp_path / "bench.json"
    argv = ["ada3d", str(dropping_config), str(tiny_checkpoint), "--dense-config", str(TINY_CONFIG),
            "--dense-checkpoint", str(tiny_checkpoint), "--frames", "1", "--kitti-root", str(KITTI_DEMO_ROOT),
            "--cfg-options", f"val_dataloader.dataset.data_root={synthkitti_root}/", *FAST,
            "--output", str(report), "--json", str(numbers), "--input-ceiling", "1.0", "0.5",
            "--plot-dir", str(tmp_path)]  # fmt: skip
    assert benchmark_cli.main(argv) == 0
    written = report.read_text()
    assert written.count("Ada3D benchmark, ") == 2 and "synthetic-val, 1 frame(s)" in written
    assert "| second_hv_secfpn_tiny_synthkitti-3d-3class (dense) | bev | 100.0% | 100.0% |" in written
    assert "| tiny_dropping | bev |" in written and "(1.00x)" in written and "--output" not in written
    results = json.loads(numbers.read_text())
    assert set(results["sources"]) == {"synthetic-val", "real-kitti"}
    dense, dropping = results["sources"]["real-kitti"]
    assert dense["frames"][0]["name"] == dropping["frames"][0]["name"] == "000001"
    assert dropping["summary"]["stages"][0]["kept_of_occupied"] == pytest.approx(0.25, abs=0.01)
    assert dropping["summary"]["flops"]["3d"] == dense["summary"]["flops"]["3d"] > 0
    out = capsys.readouterr().out
    assert "| tiny_dropping |" in out and "Dense 3D part (eager) on shares of the input columns, real-kitti:" in out
    full, half = results["input_ceiling"]["real-kitti"]
    assert full["share"] == 1.0 and full["voxels"] == full["total_voxels"] == dense["frames"][0]["voxels"]
    assert 0.3 < half["voxels"] / half["total_voxels"] < 0.7 and half["ms"] > 0
    for source in ("real-kitti", "synthetic-val"):
        assert (tmp_path / f"ada3d_input_ceiling_{source}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_ada3d_refuses_bad_arguments(tiny_checkpoint):
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--dense-config", str(TINY_CONFIG)])
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--frames", "0"])
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--cuda-graphs", "--device", "cpu"])
    with pytest.raises(SystemExit):  # the ceiling times the dense model
        benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--input-ceiling", "0.5"])
    dense = ["--dense-config", str(TINY_CONFIG), "--dense-checkpoint", "ckpt.pth"]
    for bad in (["--input-ceiling", "0"], ["--input-ceiling", "1.5"], ["--plot-dir", "plots"]):
        with pytest.raises(SystemExit):
            benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", *dense, *bad])
    graphs = benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--cuda-graphs", "--device", "cuda"])
    assert graphs.cuda_graphs
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: missing.pth"):
        benchmark_cli.main(["ada3d", str(TINY_CONFIG), "missing.pth", "--data", "real-kitti"])


def test_benchmark_ada3d_sets_the_keep_ratios_of_the_ada3d_model_only(tmp_path, tiny_checkpoint, dropping_config):
    numbers = tmp_path / "bench.json"
    argv = ["ada3d", str(dropping_config), str(tiny_checkpoint), "--data", "real-kitti", "--frames", "1",
            "--kitti-root", str(KITTI_DEMO_ROOT), *FAST, "--json", str(numbers)]  # fmt: skip
    assert benchmark_cli.main([*argv, "--keep-ratio-bev", "0.5"]) == 0
    (run,) = json.loads(numbers.read_text())["sources"]["real-kitti"]
    assert run["label"] == "tiny_dropping [keep BEV 0.5]"  # the config keeps 0.25
    assert run["summary"]["stages"][0]["kept_of_occupied"] == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ValueError, match="no 3D drop stages"):  # set_keep_ratios' own check
        benchmark_cli.main([*argv, "--keep-ratios-3d", "0.5"])
    dense = ["ada3d", str(TINY_CONFIG), str(tiny_checkpoint), "--data", "real-kitti", "--keep-ratio-bev", "0.5"]
    with pytest.raises(ValueError, match="VoxelNet has no set_keep_ratios"):
        benchmark_cli.main(dense)
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args([*argv, "--keep-ratios-3d", "0.5", "1.5"])


def test_sweep_needs_a_model_with_keep_ratios(tmp_path, synthkitti_root, tiny_checkpoint):
    argv = [str(TINY_CONFIG), str(tiny_checkpoint), "--data-root", str(synthkitti_root), "--out", str(tmp_path)]
    with pytest.raises(ValueError, match="VoxelNet has no set_keep_ratios"):
        sweep_cli.main(argv)
    with pytest.raises(SystemExit):
        sweep_cli.parse_args([*argv, "--ratios", "0"])
    with pytest.raises(SystemExit):  # nothing left to sweep
        sweep_cli.parse_args([*argv, "--ratios-3d", "fixed", "--ratio-bev", "fixed"])


def test_sweep_evaluates_every_strategy_and_ratio(tmp_path, synthkitti_root, tiny_checkpoint, dropping_config):
    argv = [str(dropping_config), str(tiny_checkpoint), "--data-root", str(synthkitti_root), "--out", str(tmp_path),
            "--ratios", "1.0", "0.3", "--strategies", "distance", "random", "--ratios-3d", "fixed"]
    points = sweep_cli.main(argv)
    assert [(p.strategy, p.keep_ratio_bev) for p in points] == [("distance", 1.0), ("distance", 0.3),
                                                                 ("random", 1.0), ("random", 0.3)]
    assert [p.bev_kept_of_occupied for p in points] == pytest.approx([1.0, 0.3, 1.0, 0.3], abs=0.01)
    assert points[0].bev_kept_of_grid > points[1].bev_kept_of_grid > 0
    assert all("Car_3D_AP40_moderate" in p.metrics and "Overall_3D_AP40_moderate" in p.metrics for p in points)
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert len(summary["points"]) == 4 and summary["ratios_3d"] == "fixed" and summary["ratio_bev"] == "same"
    assert (tmp_path / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_ada3d_tf32_switch_sets_dense_and_sparse_precision_alike():
    assert benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth"]).tf32 == "default"
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["ada3d", str(TINY_CONFIG), "ckpt.pth", "--tf32", "yes"])
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        for choice, expected in (("on", True), ("off", False)):
            with pytest.raises(FileNotFoundError):  # the switches are set before the models load
                benchmark_cli.main(["ada3d", str(TINY_CONFIG), "missing.pth", "--data", "real-kitti", "--tf32", choice])
            assert torch.backends.cuda.matmul.allow_tf32 is expected and torch.backends.cudnn.allow_tf32 is expected
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
